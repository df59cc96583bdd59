/**
 * Write-set limits, checked again by the sidecar whatever the extension
 * already enforced: a QP with a wrong setting must not push an unbounded
 * commit into the journal. A breach is verdict 2 (limit exceeded, SQLSTATE
 * 54000) with a detail naming the limit and the value (DESIGN §7).
 */
import { isRowKind } from "../protocol";
import type { Write } from "../protocol";

/** Rows a transaction may change or lock (kinds 1-4). */
export const write_set_rows_max = 3000;
/** Bytes of row images a transaction may write (kinds 1 and 2). */
export const write_set_bytes_max = 10 * 1024 * 1024;

export interface WriteSetLimits {
  rowsMax: number;
  bytesMax: number;
}

export const default_write_set_limits: WriteSetLimits = {
  rowsMax: write_set_rows_max,
  bytesMax: write_set_bytes_max,
};

/** The detail for the first limit the writes exceed, or null when within limits. */
export function exceededLimit(
  writes: readonly Pick<Write, "kind" | "image">[],
  limits: WriteSetLimits = default_write_set_limits,
): string | null {
  let rows = 0;
  let bytes = 0;
  for (const write of writes) {
    if (isRowKind(write.kind)) rows += 1;
    bytes += write.image.length;
  }
  if (rows > limits.rowsMax) {
    return `write set has ${rows} rows, more than write_set_rows_max ${limits.rowsMax}`;
  }
  if (bytes > limits.bytesMax) {
    return `write set has ${bytes} bytes of row images, more than write_set_bytes_max ${limits.bytesMax}`;
  }
  return null;
}
