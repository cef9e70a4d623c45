import type { Config } from "jest";

const transform: Config["transform"] = {
  "^.+\\.ts$": [
    "ts-jest",
    { tsconfig: { module: "commonjs", moduleResolution: "node", isolatedModules: true }, diagnostics: false },
  ],
  // jose ships ES modules only: its files are compiled to CommonJS for Jest's module loader.
  "/node_modules/jose/.+\\.js$": [
    "ts-jest",
    { tsconfig: { module: "commonjs", allowJs: true, isolatedModules: true }, diagnostics: false },
  ],
};

/** runcast/react imports runcast/client by name (so the package ships one copy of it): map it to the source. */
const selfReferences = { "^runcast/client$": "<rootDir>/lib/client/index.ts" };

/** What every jest project here shares (the slow lane's config too). */
export const base: Config = {
  testEnvironment: "node",
  moduleNameMapper: selfReferences,
  transform,
  moduleFileExtensions: ["ts", "js", "json"],
  transformIgnorePatterns: ["/node_modules/(?!jose/)"],
};

/**
 * Three projects: everything on Express 5 and ioredis 6; the stream suites again on Express 4
 * (the `express` import mapped to the `express4` alias); and the Redis suites again on ioredis 5
 * (mapped to `ioredis5`, in their fixture processes too), so every peer major is tested.
 */
const config: Config = {
  projects: [
    { ...base, displayName: "express5", testMatch: ["<rootDir>/__tests__/**/*.test.ts"] },
    {
      ...base,
      displayName: "express4",
      testMatch: ["<rootDir>/__tests__/streams/**/*.test.ts"],
      // The load tests measure the server's event loop, not Express: once is enough.
      testPathIgnorePatterns: ["/resume-load\\.test\\.ts$"],
      moduleNameMapper: { ...selfReferences, "^express$": "express4" },
    },
    {
      ...base,
      displayName: "ioredis5",
      testMatch: ["<rootDir>/__tests__/redis/**/*.test.ts"],
      moduleNameMapper: { ...selfReferences, "^ioredis$": "ioredis5" },
      globals: { RUNCAST_IOREDIS_MAJOR: 5 },
    },
  ],
};

export default config;
