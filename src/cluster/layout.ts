/**
 * Where a local cluster keeps its files. One directory holds everything:
 *
 *   DIR/cluster.json      what `ordo up` initialized (QP count, ports)
 *   DIR/run/              0700, the sidecar's Unix socket (only PostgreSQL's user and the sidecar enter)
 *   DIR/sidecar/          the sidecar's durable state (journal segments)
 *   DIR/sidecar.pid       the running sidecar's process id
 *   DIR/qpN/data          PostgreSQL data directory of QP N
 *   DIR/qpN/run           PostgreSQL's own Unix socket directory
 *   DIR/log/              sidecar.log, qpN.log
 */
import path from "node:path";

export interface QpPaths {
  readonly index: number;
  readonly root: string;
  readonly data: string;
  readonly socketDir: string;
  readonly log: string;
}

export class ClusterLayout {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get configFile(): string {
    return path.join(this.dir, "cluster.json");
  }
  get runDir(): string {
    return path.join(this.dir, "run");
  }
  get sidecarSocket(): string {
    return path.join(this.runDir, "sidecar.sock");
  }
  get sidecarData(): string {
    return path.join(this.dir, "sidecar");
  }
  get sidecarPidFile(): string {
    return path.join(this.dir, "sidecar.pid");
  }
  get logDir(): string {
    return path.join(this.dir, "log");
  }
  get sidecarLog(): string {
    return path.join(this.logDir, "sidecar.log");
  }

  qp(index: number): QpPaths {
    const root = path.join(this.dir, `qp${index}`);
    return {
      index,
      root,
      data: path.join(root, "data"),
      socketDir: path.join(root, "run"),
      log: path.join(this.logDir, `qp${index}.log`),
    };
  }
}
