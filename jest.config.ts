import type { Config } from "jest";

const transform: Config["transform"] = {
  "^.+\\.ts$": [
    "ts-jest",
    { tsconfig: { module: "commonjs", moduleResolution: "node", isolatedModules: true }, diagnostics: false },
  ],
};

const base: Config = {
  testEnvironment: "node",
  transform,
  moduleFileExtensions: ["ts", "js", "json"],
};

/**
 * Two projects: everything on Express 5, and the stream suites again on Express 4 (the
 * `express` import is mapped to the `express4` alias), so both peer majors are tested.
 */
const config: Config = {
  projects: [
    { ...base, displayName: "express5", testMatch: ["<rootDir>/__tests__/**/*.test.ts"] },
    {
      ...base,
      displayName: "express4",
      testMatch: ["<rootDir>/__tests__/streams/**/*.test.ts"],
      moduleNameMapper: { "^express$": "express4" },
    },
  ],
};

export default config;
