/*
 * limits.c - the per-transaction bounds of ordo (rows, bytes, age).
 *
 * A transaction's write set travels to the sidecar in one frame and is
 * adjudicated and journaled as a unit, so it must be bounded. Rows and bytes
 * are checked as each write is captured (fail early, before the work is
 * wasted); age is checked once, at commit. All fail with SQLSTATE 54000.
 */
#include "ordo.h"

#include "access/xact.h"
#include "utils/timestamp.h"
#include "wire.h"

void limits_check_write_set(const OrdoWriteSetStats *stats, size_t payload_bytes) {
  if (stats->rows > (uint32)ordo_max_write_rows)
    ereport(ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("ordo: transaction exceeds the row limit: %u rows written, the limit is %d "
                    "(ordo.max_write_rows)",
                    stats->rows, ordo_max_write_rows),
             errhint("Split the work into smaller transactions.")));
  if (stats->bytes > (uint64)ordo_max_write_bytes)
    ereport(ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("ordo: transaction exceeds the byte limit: %llu bytes written, the limit is %d "
                    "(ordo.max_write_bytes)",
                    (unsigned long long)stats->bytes, ordo_max_write_bytes),
             errhint("Split the work into smaller transactions.")));
  if (payload_bytes > WIRE_FRAME_PAYLOAD_BYTES_MAX)
    ereport(ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("ordo: transaction exceeds the frame limit: %zu bytes to send, the limit is %u",
                    payload_bytes, (unsigned)WIRE_FRAME_PAYLOAD_BYTES_MAX),
             errdetail("The write set holds %u writes.", stats->writes),
             errhint("Split the work into smaller transactions.")));
}

void limits_check_age(void) {
  TimestampTz start = GetCurrentTransactionStartTimestamp();
  TimestampTz now = GetCurrentTimestamp();
  long age_s = (long)((now - start) / USECS_PER_SEC);
  if (now - start > (int64)ordo_max_transaction_age_s * USECS_PER_SEC)
    ereport(ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("ordo: transaction exceeds the age limit: %ld seconds old, the limit is %d "
                    "(ordo.max_transaction_age)",
                    age_s, ordo_max_transaction_age_s),
             errdetail("Nothing was committed."),
             errhint("Keep writing transactions shorter.")));
}
