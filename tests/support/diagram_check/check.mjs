// Parses diagrams with the real Mermaid and Graphviz (WebAssembly) parsers, for the tests.
//
//   node check.mjs MODULES_DIR < diagrams.json > results.json
//
// MODULES_DIR holds node_modules with this directory's package-lock.json installed
// (`make diagram-parsers`). stdin: a JSON list of {"format": "mermaid" | "dot", "text": ...}.
// stdout: one JSON result per diagram, in order: {"ok": false, "error": ...} or {"ok": true, ...}
// with what the parser read: Mermaid's vertices (id, text with entities decoded as a browser
// would, classes), edges (start, end, text, stroke) and classes; Graphviz's nodes (name, label
// as written, the text drawn in its SVG, shape, style) and edges (tail, head, label, drawn, style).
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node check.mjs MODULES_DIR < diagrams.json");
  process.exit(2);
}
const require = createRequire(join(modules, "package.json"));
// Graphviz first: it takes a page for a browser and would look for its files there.
const viz = await require("@viz-js/viz").instance();
// Mermaid sanitises labels with DOMPurify, which needs a window: jsdom's.
const { JSDOM } = require("jsdom");
const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
const mermaid = (await import(pathToFileURL(require.resolve("mermaid")).href)).default;
mermaid.initialize({ startOnLoad: false });

// Mermaid keeps entities (#NNN; / #name;) as placeholders until it writes the SVG, where the
// browser decodes them: do the same.
function decode(text) {
  return String(text ?? "")
    .replace(/ﬂ°°(\d+)¶ß/g, (_, code) => String.fromCodePoint(Number(code)))
    .replace(/ﬂ°(\w+)¶ß/g, (_, name) => `&${name};`);
}

async function checkMermaid(text) {
  await mermaid.parse(text); // throws on a syntax error or over maxEdges
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db;
  return {
    ok: true,
    type: diagram.type,
    vertices: [...db.getVertices().values()].map((v) => ({
      id: v.id,
      text: decode(v.text),
      type: v.type ?? null,
      classes: v.classes ?? [],
    })),
    edges: db.getEdges().map((e) => ({
      start: e.start,
      end: e.end,
      text: decode(e.text),
      stroke: e.stroke ?? null,
    })),
    classes: [...db.getClasses().keys()],
  };
}

// What Graphviz draws in each node or edge of its SVG (keyed by the node id, or "tail->head").
function drawnTexts(svg) {
  const doc = new window.DOMParser().parseFromString(svg, "image/svg+xml");
  const drawn = {};
  for (const g of doc.querySelectorAll("g.node, g.edge")) {
    const title = g.querySelector("title")?.textContent ?? "";
    drawn[title] = [...g.querySelectorAll("text")].map((t) => t.textContent).join("\n");
  }
  return drawn;
}

function checkDot(text) {
  const result = viz.render(text, { format: "json0" });
  if (result.status !== "success") {
    return { ok: false, error: result.errors.map((e) => e.message).join("; ") };
  }
  const graph = JSON.parse(result.output);
  const svg = viz.render(text, { format: "svg" });
  const drawn = drawnTexts(svg.output);
  const objects = graph.objects ?? [];
  return {
    ok: true,
    warnings: result.errors.map((e) => e.message),
    nodes: objects.map((o) => ({
      name: o.name,
      label: o.label ?? null,
      drawn: drawn[o.name] ?? null,
      shape: o.shape ?? null,
      style: o.style ?? null,
    })),
    edges: (graph.edges ?? []).map((e) => {
      const tail = objects[e.tail].name;
      const head = objects[e.head].name;
      return {
        tail,
        head,
        label: e.label ?? null,
        drawn: drawn[`${tail}->${head}`] ?? null,
        style: e.style ?? null,
      };
    }),
  };
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const { format, text } of JSON.parse(input)) {
  try {
    results.push(format === "dot" ? checkDot(text) : await checkMermaid(text));
  } catch (error) {
    results.push({ ok: false, error: String(error?.message ?? error) });
  }
}
process.stdout.write(JSON.stringify(results));
