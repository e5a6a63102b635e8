/**
 * The project is self-contained: every link between its pages lands on a page and a heading that
 * exist, and the code names only documents the repository holds (the device API is described in
 * docs/protocol.md, not in a file kept elsewhere).
 *
 * @module
 */
import { deepEqual } from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const PAGE_DIRS = ["", "docs/", "ha-addon/", "fixtures/"];
const CODE_DIRS = ["lib/", "commands/", "tests/", "image/"];

/** The `.md` files directly in `dir` (relative to the root), as root-relative paths. */
function pagesIn(dir: string): string[] {
  try {
    return [...Deno.readDirSync(new URL(dir, ROOT))]
      .filter((e) => e.isFile && e.name.endsWith(".md"))
      .map((e) => dir + e.name);
  } catch {
    return [];
  }
}

/** Every `.ts` file under `dir`, as root-relative paths. */
function codeIn(dir: string): string[] {
  const files: string[] = [];
  const walk = (at: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(new URL(at, ROOT))];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory) walk(`${at}${e.name}/`);
      else if (e.name.endsWith(".ts")) files.push(at + e.name);
    }
  };
  walk(dir);
  return files;
}

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(new URL(path, ROOT));
  } catch {
    return undefined;
  }
}

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as `-`. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replaceAll(" ", "-");
}

/** `text` without its fenced code blocks (indented ones too), whose brackets are code, not links. */
function prose(text: string): string {
  return text.replace(/^[ \t]*```[^\n]*\n[\s\S]*?^[ \t]*```[ \t]*$/gm, "");
}

Deno.test("the project's pages and code cite only what the repository holds", async (t) => {
  await t.step("should link every page only to pages and headings that exist", () => {
    const broken: string[] = [];
    for (const page of PAGE_DIRS.flatMap(pagesIn)) {
      const base = new URL(page, ROOT);
      for (const [, link] of prose(read(page)!).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(link!)) continue;
        const [path, anchor] = link!.split("#");
        const target = path === "" ? base : new URL(path!, base);
        const relative = target.href.slice(ROOT.href.length);
        const text = read(relative);
        if (text === undefined) {
          broken.push(`${page}: ${link} (no ${relative})`);
        } else if (anchor !== undefined && relative.endsWith(".md")) {
          const anchors = [...prose(text).matchAll(/^#+ (.*)$/gm)].map((h) => anchorOf(h[1]!));
          if (!anchors.includes(anchor)) broken.push(`${page}: ${link} (no such heading)`);
        }
      }
    }
    deepEqual(broken, []);
  });

  await t.step("should name in the code only documents the repository holds", () => {
    const missing: string[] = [];
    for (const file of CODE_DIRS.flatMap(codeIn)) {
      for (const [name] of read(file)!.matchAll(/(?<![\w/.-])(?:[\w-]+\/)*[\w-]+\.md\b/g)) {
        const found = ["", "docs/", "ha-addon/"].some((dir) => read(dir + name) !== undefined);
        if (!found) missing.push(`${file}: ${name}`);
      }
    }
    deepEqual(missing, []);
  });
});
