/**
 * What ess accepts from the device, in one place. A real LG ESS answers a few kB of JSON, three
 * levels deep, with at most a few hundred values (a day graph: 96 rows of 7); the process runs
 * under a 64 MB V8 heap (run-flags.txt). Every limit leaves a real device a wide margin and keeps
 * a broken or hostile peer well inside that heap and off the call stack.
 *
 * @module
 */

/**
 * The largest answer body: 1 MiB. Parsing JSON takes several times its text in memory, so this is
 * what still fits the 64 MB heap with room to spare; the biggest real answers are about 15 kB.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The most bytes of status line and headers: nginx's own default buffers are 1 to 8 kB. */
export const MAX_HEAD_BYTES = 64 * 1024;

/**
 * Interim (1xx) answers before the real one: the device sends none, HTTP allows a few; more is a
 * peer that would keep ess parsing until the timeout.
 */
export const MAX_INTERIM_ANSWERS = 4;

/**
 * How deeply an answer may nest. Real answers nest three levels (ESS Home 15: four); ess walks
 * answers with loops, but V8's own `JSON.stringify` recurses, and a log or MQTT topic of 32
 * levels is already unreadable.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * How many values (leaves) one answer may hold: each becomes an MQTT topic and a retained
 * message, so 10,000 is as far as a broker and Home Assistant should be asked to go.
 */
export const MAX_JSON_LEAVES = 10_000;

/**
 * The longest auth key taken from a login answer. The device hands out UUIDs (36 characters);
 * a key is a secret, so every line ess logs is searched for it, and a key of many kilobytes
 * would make each of those searches, and every request that carries it, that much larger.
 */
export const MAX_AUTH_KEY_LENGTH = 256;

/**
 * The longest device password ess sends. The device's is its wired MAC address, 12 characters;
 * anything near this bound is a pasted file or a mistake, not a password.
 */
export const MAX_PASSWORD_LENGTH = 256;
