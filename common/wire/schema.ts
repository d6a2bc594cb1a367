import { SalaError } from '../errors.js';

/**
 * A small validator for decoded msgpack values. Each field knows how to turn an `unknown` into its
 * type or throw SALA_E_PROTOCOL_INVALID_FIELD naming the field; object shapes are strict (an
 * unknown key is an error), so a sender cannot smuggle extra data past the boundary.
 */
export interface Field<T> {
  readonly isOptional: boolean;
  parse(value: unknown, path: string): T;
}

interface OptionalField<T> extends Field<T | undefined> {
  readonly isOptional: true;
}

export type Shape = Readonly<Record<string, Field<unknown>>>;

type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalField<unknown> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = Exclude<keyof S, RequiredKeys<S>>;
type FieldType<F> = F extends Field<infer T> ? T : never;
/** The value type a field parses to (e.g. the type of one directory entry). */
export type FieldValue<F> = FieldType<F>;

export type Infer<S extends Shape> = Simplify<
  { -readonly [K in RequiredKeys<S>]: FieldType<S[K]> } & {
    -readonly [K in OptionalKeys<S>]?: Exclude<FieldType<S[K]>, undefined>;
  }
>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

export function invalidField(path: string, problem: string): SalaError {
  return new SalaError('SALA_E_PROTOCOL_INVALID_FIELD', `Field "${path}" ${problem}.`);
}

function required<T>(parse: (value: unknown, path: string) => T): Field<T> {
  return { isOptional: false, parse };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export const field = {
  string(limits: { maxBytes: number; minBytes?: number }): Field<string> {
    return required((value, path) => {
      if (typeof value !== 'string') throw invalidField(path, 'must be a string');
      const bytes = Buffer.byteLength(value, 'utf8');
      if (bytes > limits.maxBytes) throw invalidField(path, `is ${bytes} bytes; the limit is ${limits.maxBytes}`);
      if (bytes < (limits.minBytes ?? 0)) throw invalidField(path, `must be at least ${limits.minBytes} bytes`);
      return value;
    });
  },

  uint(limits: { max?: number } = {}): Field<number> {
    const max = limits.max ?? Number.MAX_SAFE_INTEGER;
    return required((value, path) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw invalidField(path, 'must be a non-negative integer');
      }
      if (value > max) throw invalidField(path, `must be at most ${max}`);
      return value;
    });
  },

  boolean(): Field<boolean> {
    return required((value, path) => {
      if (typeof value !== 'boolean') throw invalidField(path, 'must be true or false');
      return value;
    });
  },

  bytes(limits: { maxBytes: number; exactBytes?: number }): Field<Uint8Array> {
    return required((value, path) => {
      if (!(value instanceof Uint8Array)) throw invalidField(path, 'must be binary');
      if (limits.exactBytes !== undefined && value.length !== limits.exactBytes) {
        throw invalidField(path, `must be exactly ${limits.exactBytes} bytes`);
      }
      if (value.length > limits.maxBytes) throw invalidField(path, `is ${value.length} bytes; the limit is ${limits.maxBytes}`);
      return value;
    });
  },

  oneOf<const T extends string>(...allowed: readonly T[]): Field<T> {
    return required((value, path) => {
      if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
        throw invalidField(path, `must be one of ${allowed.join(', ')}`);
      }
      return value as T;
    });
  },

  array<T>(item: Field<T>, limits: { maxItems: number }): Field<T[]> {
    return required((value, path) => {
      if (!Array.isArray(value)) throw invalidField(path, 'must be an array');
      if (value.length > limits.maxItems) throw invalidField(path, `has ${value.length} items; the limit is ${limits.maxItems}`);
      return value.map((element: unknown, index) => item.parse(element, `${path}[${index}]`));
    });
  },

  object<S extends Shape>(shape: S): Field<Infer<S>> {
    return required((value, path) => parseShape(shape, value, path));
  },

  optional<T>(inner: Field<T>): OptionalField<T> {
    return {
      isOptional: true,
      parse: (value, path) => (value === undefined ? undefined : inner.parse(value, path)),
    };
  },
};

/** Parses a strict object: every required key present, no key the shape does not name. */
export function parseShape<S extends Shape>(shape: S, value: unknown, path: string): Infer<S> {
  if (!isPlainObject(value)) throw invalidField(path, 'must be a map');
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(shape, key)) throw invalidField(`${path}.${key.slice(0, 64)}`, 'is not part of this message');
  }
  const out: Record<string, unknown> = {};
  for (const [key, fieldSpec] of Object.entries(shape)) {
    const raw = value[key];
    if (raw === undefined) {
      if (!fieldSpec.isOptional) throw invalidField(`${path}.${key}`, 'is missing');
      continue;
    }
    out[key] = fieldSpec.parse(raw, `${path}.${key}`);
  }
  return out as Infer<S>;
}
