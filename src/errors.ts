// Error classes: every failure names what was wrong and, where it helps, what to do about it.

/** Base class: anything hopscope throws on purpose. */
export class HopscopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A checkpoint file or folder is unreadable, corrupt, or does not match its config. */
export class CheckpointError extends HopscopeError {}

/** A config.json field is missing, has the wrong type, or names an unsupported value. */
export class ConfigError extends HopscopeError {}

/** Inputs to a model or experiment are malformed (shapes, ids, images, prompts). */
export class InputError extends HopscopeError {}

/** An experiment spec failed validation; `path` names the offending field. */
export class SpecError extends HopscopeError {
  constructor(
    message: string,
    readonly path: string = '',
  ) {
    super(message);
  }
}
