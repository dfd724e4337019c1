// The JupyterLab plugin: registers the widget classes with the ipywidgets manager (jupyterlab_widgets).

import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { HopscopeView, HopscopeViewModel, MODULE_NAME, MODULE_VERSION } from './index';

/** Shaped as a JupyterFrontEndPlugin; typed locally so the build does not need @jupyterlab/application. */
interface WidgetPlugin {
  id: string;
  requires: (typeof IJupyterWidgetRegistry)[];
  autoStart: boolean;
  activate(app: unknown, registry: IJupyterWidgetRegistry): void;
}

const plugin: WidgetPlugin = {
  id: 'hopscope-widgets:plugin',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate(_app, registry) {
    registry.registerWidget({ name: MODULE_NAME, version: MODULE_VERSION, exports: { HopscopeViewModel, HopscopeView } });
  },
};

export default plugin;
