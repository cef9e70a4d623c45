// The page of the React hook tests, bundled by esbuild in the test with React 19 in
// development mode (where StrictMode mounts every component twice). The test drives it
// through `window.app` and reads what each hook returned from `window.views`.
import { createElement as h, StrictMode, useState } from "react";
import { createRoot, type Root } from "react-dom/client";
import { type RunsView, type RunView, useRun, useRuns } from "../../lib/react/index";

interface PageApp {
  /** Mounts `count` components watching `url` (in StrictMode unless `strict` is false). */
  mount(url: string, count: number, strict: boolean): void;
  /** Points every mounted run component at another URL. */
  setUrl(url: string): void;
  /** Mounts one component watching the global stream. */
  mountAll(url: string): void;
  unmount(): void;
}

type Views = Record<
  string,
  { status: string; state: unknown; events: unknown[]; error: string | null; renders: number }
>;
type Page = typeof globalThis & {
  app: PageApp;
  views: Views;
  allView?: { status: string; runs: string[] };
  /** EventSources the page constructed: StrictMode's remount must not open one and throw it away. */
  eventSources: number;
};
const page = globalThis as Page;
page.views = {};
page.eventSources = 0;
const NativeEventSource = page.EventSource;
page.EventSource = class extends NativeEventSource {
  constructor(url: string | URL, init?: EventSourceInit) {
    super(url, init);
    page.eventSources++;
  }
};

let root: Root | undefined;
let setShared: ((url: string) => void) | undefined;

function record(name: string, view: RunView): void {
  const prior = page.views[name];
  page.views[name] = {
    status: view.status,
    state: view.state ?? null,
    events: view.events.map((e) => (e as { n?: unknown }).n),
    error: view.error?.code ?? null,
    renders: (prior?.renders ?? 0) + 1,
  };
}

function RunPanel({ name, url }: { name: string; url: string }) {
  const view = useRun(url, { from: "start" });
  record(name, view);
  return h("pre", { id: name }, JSON.stringify(view.state ?? null));
}

function Runs({ initial, count }: { initial: string; count: number }) {
  const [url, setUrl] = useState(initial);
  setShared = setUrl;
  return h(
    "div",
    null,
    Array.from({ length: count }, (_, i) => h(RunPanel, { key: i, name: `panel${i}`, url })),
  );
}

function AllPanel({ url }: { url: string }) {
  const view: RunsView = useRuns(url);
  page.allView = { status: view.status, runs: [...view.runs.keys()] };
  return h("pre", null, String(view.runs.size));
}

function render(node: ReturnType<typeof h>, strict: boolean): void {
  root?.unmount();
  const container = document.getElementById("root") ?? document.body.appendChild(document.createElement("div"));
  container.id = "root";
  root = createRoot(container);
  root.render(strict ? h(StrictMode, null, node) : node);
}

page.app = {
  mount: (url, count, strict) => render(h(Runs, { initial: url, count }), strict),
  setUrl: (url) => setShared?.(url),
  mountAll: (url) => render(h(AllPanel, { url }), true),
  unmount: () => {
    root?.unmount();
    root = undefined;
  },
};
