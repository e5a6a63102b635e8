/**
 * The dashboard's files, imported as text so that `deno compile` embeds them in the binary:
 * the page works with no internet connection and no files beside ess.
 *
 * @module
 */
import page from "./assets/index.html" with { type: "text" };
import script from "./assets/app.js" with { type: "text" };
import chart from "./assets/chart.js" with { type: "text" };
import surplus from "./assets/surplus.js" with { type: "text" };
import site from "./assets/site.js" with { type: "text" };
import layout from "./assets/app.css" with { type: "text" };
import widgets from "./assets/widgets.css" with { type: "text" };
import icon from "./assets/icon.svg" with { type: "text" };

/** The page, its scripts, its style sheet (the widgets, then the page layout with its screen-size rules last) and its icon. */
export const ASSETS: Readonly<
  Record<"page" | "script" | "chart" | "surplus" | "site" | "style" | "icon", string>
> = {
  page,
  script,
  chart,
  surplus,
  site,
  style: `${widgets}\n${layout}`,
  icon,
};
