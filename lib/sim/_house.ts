/**
 * The simulated house around the simulated ESS: what the sun offers the panels and what the
 * household draws, both pure functions of the seed and the local wall-clock time. Being
 * stateless, the same seed and clock give the same readings however often the device is asked.
 *
 * @module
 */

const TWO_32 = 4294967296;

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A value in [0, 1) determined by the seed, a channel and an integer key. */
function hash01(seed: number, channel: number, key: number): number {
  const k = Math.floor(key);
  let h = mix((seed >>> 0) ^ 0x9e3779b9);
  h = mix(h ^ channel);
  h = mix(h ^ (k >>> 0));
  return mix(h ^ (Math.floor(k / TWO_32) >>> 0)) / TWO_32;
}

/** Noise channels, so that the curves of different quantities are independent. */
const Channel = {
  Weather: 1,
  Cloud: 2,
  Flicker: 3,
  LoadSlow: 4,
  LoadFast: 5,
  Appliance: 6,
  ApplianceStart: 7,
  AppliancePower: 8,
  Voltage: 9,
  Frequency: 10,
  StartSoc: 11,
} as const;

/** Smooth noise in [0, 1): seeded values at knots `periodSeconds` apart, eased in between. */
function smoothNoise(seed: number, channel: number, seconds: number, periodSeconds: number) {
  const x = seconds / periodSeconds;
  const knot = Math.floor(x);
  const f = x - knot;
  const ease = f * f * (3 - 2 * f);
  const a = hash01(seed, channel, knot);
  const b = hash01(seed, channel, knot + 1);
  return a + (b - a) * ease;
}

/** Local wall-clock facts about an instant, which the sun and the household follow. */
interface LocalTime {
  /** Hours since local midnight, fractional. */
  hour: number;
  /** Day of the year, 0-based. */
  dayOfYear: number;
  /** Local days since the epoch. */
  day: number;
  /** Seconds since the epoch. */
  seconds: number;
}

/** Reads the time zone once and does the rest in UTC arithmetic, which is much cheaper. */
function localTime(t: Date): LocalTime {
  const ms = t.getTime();
  const local = ms - t.getTimezoneOffset() * 60_000;
  const day = Math.floor(local / 86_400_000);
  const year = new Date(local).getUTCFullYear();
  return {
    hour: (local - day * 86_400_000) / 3_600_000,
    dayOfYear: day - Date.UTC(year, 0, 1) / 86_400_000,
    day,
    seconds: ms / 1000,
  };
}

/** 1 at midsummer, -1 at midwinter (northern hemisphere). */
function season(dayOfYear: number): number {
  return Math.cos((2 * Math.PI * (dayOfYear - 172)) / 365.25);
}

/** Household draw in W at each full hour of the day; interpolated in between. */
// deno-fmt-ignore
const LOAD_PROFILE = [
  290, 270, 255, 250, 255, 290, 470, 820, 690, 510, 450, 470,
  610, 530, 460, 450, 540, 780, 1080, 990, 840, 690, 500, 360,
] as const;

/** Local solar noon in hours; a little after 12 as in most of Europe's time zones. */
const SOLAR_NOON = 12.75;

/** The sun, the weather and the household of one seed. */
export class House {
  readonly #seed: number;
  /** Peak PV power of the panels in W. */
  readonly pvCapacity: number;
  /** The household's draw relative to the usual one (1). */
  readonly #loadScale: number;

  /** Throws a RangeError for a capacity or scale that is not a positive number. */
  constructor(seed: number, pvCapacity: number, loadScale = 1) {
    if (!(pvCapacity > 0 && pvCapacity < Infinity)) {
      throw new RangeError(`pvCapacityW must be more than 0, not ${pvCapacity}`);
    }
    if (!(loadScale > 0 && loadScale < Infinity)) {
      throw new RangeError(`loadScale must be more than 0, not ${loadScale}`);
    }
    this.#seed = seed;
    this.pvCapacity = pvCapacity;
    this.#loadScale = loadScale;
  }

  /**
   * What the panels can deliver at `t` in W: a bell between sunrise and sunset whose height and
   * width follow the season, scaled by the day's weather and passing clouds; zero at night.
   */
  pv(t: Date): number {
    const lt = localTime(t);
    const s = season(lt.dayOfYear);
    const halfDay = 6 + 2.2 * s;
    const x = (lt.hour - SOLAR_NOON) / halfDay;
    if (Math.abs(x) >= 1) return 0;
    const bell = Math.cos((x * Math.PI) / 2) ** 1.6;
    const height = 0.6 + 0.25 * s;
    const cloudiness = 0.75 * (1 - hash01(this.#seed, Channel.Weather, lt.day));
    const clouds = 1 -
      cloudiness * (0.4 + 0.6 * smoothNoise(this.#seed, Channel.Cloud, lt.seconds, 180));
    const flicker = 0.97 + 0.03 * smoothNoise(this.#seed, Channel.Flicker, lt.seconds, 5);
    return this.pvCapacity * height * bell * clouds * flicker;
  }

  /**
   * What the household draws at `t` in W: a daily profile (more in winter), slow and fast noise,
   * and now and then an appliance (kettle, oven, washing machine) for a few minutes.
   */
  load(t: Date): number {
    const lt = localTime(t);
    const i = Math.floor(lt.hour);
    const f = lt.hour - i;
    const a = LOAD_PROFILE[i % 24]!;
    const b = LOAD_PROFILE[(i + 1) % 24]!;
    const base = (a + (b - a) * f) * (1.1 - 0.1 * season(lt.dayOfYear));
    const slow = 0.85 + 0.3 * smoothNoise(this.#seed, Channel.LoadSlow, lt.seconds, 60);
    const fast = 0.96 + 0.08 * smoothNoise(this.#seed, Channel.LoadFast, lt.seconds, 2);
    const slot = Math.floor(lt.seconds / 900);
    let appliance = 0;
    if (hash01(this.#seed, Channel.Appliance, slot) < 0.1) {
      const start = 900 * slot + 300 * hash01(this.#seed, Channel.ApplianceStart, slot);
      const into = lt.seconds - start;
      if (into >= 0 && into < 420) {
        appliance = 1200 + 1400 * hash01(this.#seed, Channel.AppliancePower, slot);
      }
    }
    return (base * slow * fast + appliance) * this.#loadScale;
  }

  /** Grid voltage in V, to 0.1 V. */
  voltage(t: Date): number {
    const n = smoothNoise(this.#seed, Channel.Voltage, t.getTime() / 1000, 1);
    return Math.round((228 + 6 * n) * 10) / 10;
  }

  /** Grid frequency in Hz, to 0.01 Hz. */
  frequency(t: Date): number {
    const n = smoothNoise(this.#seed, Channel.Frequency, t.getTime() / 1000, 7);
    return Math.round((49.97 + 0.06 * n) * 100) / 100;
  }

  /** The battery's state of charge at the start of a day the simulator did not run, in %. */
  startSoc(day: Date, reserve: number): number {
    const lt = localTime(day);
    return reserve + (95 - reserve) * hash01(this.#seed, Channel.StartSoc, lt.day);
  }
}
