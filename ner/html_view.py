"""Tagged texts as one self-contained HTML page: the `ner predict --format html` view.

Each text is shown as written, its entities highlighted in the colour of their type, the colour's
opacity rising with the entity's confidence (0.15 at confidence 0 to 1 at confidence 1). An entity
flagged for review (confidence below `Tagger.predict`'s threshold) has a dashed red outline and a "?"
after its type label. Hovering an entity shows its type and confidence (the `title` attribute). A legend
names the colours and the threshold.

The page has its CSS inline and loads nothing (no scripts, fonts or images), so it can be mailed or
opened offline. Every piece of the input text is HTML-escaped, so text such as `<script>` or `&` shows as
written and never runs. Nothing here depends on TensorFlow.
"""
import html
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ner.api import TaggedText

# Colour-blind-safe qualitative palette (Okabe & Ito 2008), as "r, g, b"; types beyond it reuse it in turn.
PALETTE = ("230, 159, 0", "86, 180, 233", "0, 158, 115", "240, 228, 66", "0, 114, 178", "213, 94, 0",
           "204, 121, 167", "153, 153, 153")
MIN_OPACITY = 0.15  # the opacity of an entity of confidence 0

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }
h1 { font-size: 1.3em; }
.text { line-height: 2.4; margin: 0 0 1em 0; padding: 0.5em 0; border-bottom: 1px solid #ddd; }
.entity { padding: 0.15em 0.3em; border-radius: 0.3em; border: 2px solid transparent; }
.entity .type { font-size: 0.7em; font-weight: bold; text-transform: uppercase; margin-left: 0.3em; }
.entity.review { border: 2px dashed #c00; }
.legend span { margin-right: 1em; }
"""


def type_colours(entity_types: Sequence[str]) -> dict:
    """`{type: "r, g, b"}` in `entity_types` order from `PALETTE`."""
    return {entity_type: PALETTE[index % len(PALETTE)] for index, entity_type in enumerate(entity_types)}


def render_html(results: Sequence["TaggedText"], entity_types: Sequence[str], threshold: float,
                title: str = "Predicted entities") -> str:
    """The page (module docstring) for `results` (from `Tagger.predict(..., threshold=threshold)`), with
    colours in `entity_types` order (the run's `LabelMap.entity_types`; other types get grey)."""
    colours = type_colours(entity_types)
    legend = "".join(f'<span class="entity" style="background: rgba({colour}, 0.6)">{html.escape(t)}</span>'
                     for t, colour in colours.items())
    review = (f'<span class="entity review">dashed: confidence below {threshold:g}</span>' if threshold > 0
              else "<span>(no review threshold: pass --threshold to mark entities below it)</span>")
    body = "".join(_render_text(result, colours) for result in results)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="legend">{legend}{review}<span>opacity: confidence</span></p>\n{body}</body>\n</html>\n')


def _render_text(result: "TaggedText", colours: dict) -> str:
    """One `<p>`: the text with each entity wrapped in a `<span class="entity">`."""
    parts, position = [], 0
    for entity in result.entities:
        parts.append(html.escape(result.text[position:entity.start]))
        colour = colours.get(entity.type, PALETTE[-1])
        opacity = MIN_OPACITY + (1.0 - MIN_OPACITY) * entity.confidence
        flag = " (below the review threshold)" if entity.review else ""
        parts.append(f'<span class="entity{" review" if entity.review else ""}" '
                     f'style="background: rgba({colour}, {opacity:.2f})" '
                     f'title="{html.escape(entity.type)}, confidence {entity.confidence:.2f}{flag}">'
                     f'{html.escape(entity.text)}<span class="type">{html.escape(entity.type)}'
                     f'{"?" if entity.review else ""}</span></span>')
        position = entity.end
    parts.append(html.escape(result.text[position:]))
    return f'<p class="text">{"".join(parts)}</p>\n'
