/**
 * The dashboard's files, imported as text so that `deno compile` embeds them in the binary:
 * the page works with no internet connection and no files beside ess.
 *
 * @module
 */
import page from "./assets/index.html" with { type: "text" };
import script from "./assets/app.js" with { type: "text" };
import style from "./assets/app.css" with { type: "text" };
import icon from "./assets/icon.svg" with { type: "text" };

/** The page, its script, its style sheet and its icon. */
export const ASSETS: Readonly<Record<"page" | "script" | "style" | "icon", string>> = {
  page,
  script,
  style,
  icon,
};
