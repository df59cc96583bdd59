/**
 * Fields of a Linux `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) line,
 * numbered as in proc(5): 1 is the pid, 2 the command name in parentheses
 * (which may itself hold spaces and parentheses), 4 the parent pid, 14 and 15
 * user and system time, 22 the start time. Read by the tools that look at
 * processes (the fault campaign, the sidecar's lock, the benchmarks).
 */

/** Field `field` (3 or more) of a stat line; undefined when the line has none. */
export function statField(stat: string, field: number): string | undefined {
  if (!Number.isInteger(field) || field < 3) throw new RangeError(`stat field ${field} is not 3+`);
  // Fields after the command name's last ")" start at field 3.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[field - 3];
}
