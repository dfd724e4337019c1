// The module name and version the frontend registers; the kernel's `_model_module_version` range must match.
import { WIDGETS_VERSION, WIDGET_NAMES } from '../../src/report/protocol';

export const MODULE_NAME = WIDGET_NAMES._model_module;
export const MODULE_VERSION = WIDGETS_VERSION;
