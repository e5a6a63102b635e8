/**
 * How a broker connection's comings and goings are logged: once each, not a line per attempt,
 * and a connection that keeps dropping soon after it was made said once, not forever.
 *
 * @module
 */
import type { Logger } from "../log.ts";

/** A connection lost sooner than this after it was made counts as a flap (and as quiet). */
const STABLE_CONNECTION_MS = 60_000;

/** Logs the connects and disconnects of one connection to `broker`. */
export class ConnectionLog {
  #broker: string;
  #log: Logger;
  #now: () => number;
  #up: boolean | undefined;
  #connectedAt = 0;
  /** Connections lost soon after they were made, in a row. */
  #flaps = 0;

  /** Logs for the connection to `broker` through `log`, timing flaps by `now`. */
  constructor(broker: string, log: Logger, now: () => number) {
    this.#broker = broker;
    this.#log = log;
    this.#now = now;
  }

  /** The connection was made. */
  connected(): void {
    const again = this.#up !== undefined;
    this.#log[this.#flaps > 1 ? "debug" : "info"](
      `connected to ${this.#broker}${again ? " again" : ""}`,
    );
    this.#up = true;
    this.#connectedAt = this.#now();
  }

  /** The connection was lost, or could not be made, for `reason`. */
  disconnected(reason: string): void {
    const text = `${this.#broker}: ${reason}`;
    if (this.#up) {
      this.#flaps = this.#now() - this.#connectedAt < STABLE_CONNECTION_MS ? this.#flaps + 1 : 0;
      this.#log[this.#flaps > 1 ? "debug" : "warning"](
        `lost the connection to ${text}; reconnecting`,
      );
    } else if (this.#up === undefined) {
      this.#log.warning(`cannot connect to ${text}; reconnecting`);
    } else this.#log.debug(`still no connection to ${text}`);
    this.#up = false;
  }
}
