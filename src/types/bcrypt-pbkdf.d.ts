// The part of bcrypt-pbkdf 1.0.2's API that slicefs uses (no @types package exists for it).
declare module 'bcrypt-pbkdf' {
  /** OpenSSH's bcrypt_pbkdf: fills `key` (keylen bytes) and returns 0, or returns -1 for bad arguments. */
  export function pbkdf(
    pass: Uint8Array,
    passlen: number,
    salt: Uint8Array,
    saltlen: number,
    key: Uint8Array,
    keylen: number,
    rounds: number,
  ): number;
  const bcryptPbkdf: { pbkdf: typeof pbkdf };
  export default bcryptPbkdf;
}
