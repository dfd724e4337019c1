// The widget model: the kernel owns the state ({view, title, data, progress, error, label, compare}); the frontend never
// writes it back, it only sends `run-cell` custom messages.

import { DOMWidgetModel, type ISerializers } from '@jupyter-widgets/base';
import { WIDGET_NAMES } from '../../src/report/protocol';
import { MODULE_VERSION } from './version';

export class HopscopeViewModel extends DOMWidgetModel {
  override defaults() {
    return {
      ...super.defaults(),
      ...WIDGET_NAMES,
      _model_module_version: MODULE_VERSION,
      _view_module_version: MODULE_VERSION,
      view: null,
      title: '',
      data: {},
      progress: null,
      error: null,
      label: null,
      compare: null,
    };
  }

  // Binary buffers arrive as DataView at their paths inside `data`; validateViewState reads them, so no
  // custom deserialiser is needed (and static pages decode saved base64 buffers the same way).
  static override serializers: ISerializers = { ...DOMWidgetModel.serializers };
}
