/**
 * A manifest entry: one remote file and where it appears in the tree. Every manifest format (plain
 * URL TSV and lists; the ARGO and ICGC 25K score manifests) parses into these.
 */
export interface ManifestEntry {
  /** Relative path in the tree, '/'-separated, validated (no '..', not absolute, no empty segment). */
  path: string;
  /** An http(s) URL, or `score:<objectId>` for a Score object (./score-ref.ts). */
  url: string;
  size?: number;
  md5?: string;
  /** The index: an http(s) URL, or `score:<objectId>` (a score manifest's `index_object_id`). */
  indexUrl?: string;
  /** The index's own file name when the manifest lists it (names the index beside the file). */
  indexFileName?: string;
  /** A stable id of the object (the `id` column), for `download --output-layout id`. */
  id?: string;
  /** A Score object id: the bytes come from the Score storage service, not from `url`. */
  objectId?: string;
  /** Score manifests: the analysis (bundle) the file belongs to, and its file name there. */
  bundle?: string;
  fileName?: string;
  /** Other columns of a score manifest (lists split at '|'), for `slicefs manifest --json`. */
  columns?: Record<string, string | string[]>;
  /**
   * The object is Crypt4GH-encrypted (an `encryption` column saying `crypt4gh`, or a name ending in
   * `.c4gh`): the tree shows its plaintext under `path` (without `.c4gh`).
   */
  encryption?: 'crypt4gh';
  /** Where its Crypt4GH header is, when the object holds only the data blocks (`header_url`). */
  headerUrl?: string;
  /** 1-based line of the manifest the entry came from (for messages). */
  line: number;
}

export interface Manifest {
  /** The file it was read from (for messages). */
  file: string;
  format: string;
  entries: ManifestEntry[];
}

/** A manifest format: recognises its header and parses the rows. */
export interface ManifestFormat {
  name: string;
  /** True when this format should parse a file whose first meaningful line is `firstLine`. */
  detect(firstLine: string): boolean;
  parse(text: string, file: string): ManifestEntry[];
}

/** How an object is encrypted: Crypt4GH, its header inline or at `headerUrl`. */
export interface EncryptionRef {
  headerUrl?: string;
}
