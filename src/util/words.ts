/** `1 file`, `2 files`, `0 files`; `counted(1, 'entry', 'entries')` for a plural that is not `+s`. */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
