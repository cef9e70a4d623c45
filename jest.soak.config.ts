import type { Config } from "jest";
import { base } from "./jest.config";

/**
 * The slow lane: soak tests (`__tests__/soak/**\/*.soak.ts`), left out of `npm test` (whose
 * projects match `*.test.ts` only). Run them with `npm run test:soak`; `RUNCAST_SOAK_MS` sets
 * how long each one soaks (default 2 minutes).
 */
const config: Config = {
  ...base,
  displayName: "soak",
  testMatch: ["<rootDir>/__tests__/soak/**/*.soak.ts"],
};

export default config;
