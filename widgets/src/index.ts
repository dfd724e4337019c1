// hopscope-widgets: the widget classes the kernel names (HopscopeViewModel / HopscopeView).

export { HopscopeViewModel } from './model';
export { HopscopeView } from './view';
export { MODULE_NAME, MODULE_VERSION } from './version';
