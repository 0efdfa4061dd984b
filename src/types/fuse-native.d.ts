// The part of fuse-native 2.2.6's API that slicefs uses (the package ships no types).
declare module 'fuse-native' {
  type Cb<T = never> = (err: number, value?: T) => void;
  export interface FuseStat {
    mode: number;
    size: number;
    uid: number;
    gid: number;
    nlink: number;
    mtime: Date;
    atime: Date;
    ctime: Date;
    blocks?: number;
    blksize?: number;
    ino?: number;
  }
  export interface FuseOps {
    init?(cb: (err: number) => void): void;
    getattr?(path: string, cb: Cb<FuseStat>): void;
    fgetattr?(path: string, fd: number, cb: Cb<FuseStat>): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    open?(path: string, flags: number, cb: Cb<number>): void;
    opendir?(path: string, flags: number, cb: Cb<number>): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    release?(path: string, fd: number, cb: (err: number) => void): void;
    releasedir?(path: string, fd: number, cb: (err: number) => void): void;
    access?(path: string, mode: number, cb: (err: number) => void): void;
    statfs?(path: string, cb: Cb<Record<string, number>>): void;
    [op: string]: ((...args: never[]) => void) | undefined;
  }
  export interface FuseOptions {
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    debug?: boolean;
    kernelCache?: boolean;
    autoCache?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    fsname?: string;
    subtype?: string;
    maxRead?: number;
    uid?: number;
    gid?: number;
  }
  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static isConfigured(cb: (err: Error | null, yes: boolean) => void): void;
    static readonly [errno: string]: number;
  }
}
