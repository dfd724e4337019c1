// Compile-time check that an experiment's TypeScript spec and its JSON Schema name the same fields: the schema
// is the single source of truth (validation, defaults, magic flags), the interface types the run function.
// `questions` and `notes` are optional in SpecBase and may be absent from a kind's schema.

type Optional<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];

/** `true` when every schema property is a spec field and every required spec field is a schema property. */
export type SchemaKeysMatch<Spec, Schema extends { properties: object }> =
  [Exclude<keyof Schema['properties'], keyof Spec>, Exclude<Exclude<keyof Spec, Optional<Spec>>, keyof Schema['properties']>] extends [never, never]
    ? true
    : { schemaOnly: Exclude<keyof Schema['properties'], keyof Spec>; specOnly: Exclude<Exclude<keyof Spec, Optional<Spec>>, keyof Schema['properties']> };
