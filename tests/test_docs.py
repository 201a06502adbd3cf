"""README.md and docs/*.md: length, links and code blocks.

How code blocks are tested: a fenced block is skipped when the line before it
(blank lines aside) is the HTML comment `<!-- skip-test -->`, which GitHub does not
render. Mark a block so when it needs what a test cannot have (a GPU, minutes,
your own files, the `make` targets).

- README.md: every `python` block not marked runs in `test_readme_code_block`, in
  a fresh namespace inside a temporary directory (fast: the default run). Its
  `bash` / `sh` blocks are not run and must be marked.
- docs/*.md: every `python` block is compiled (default run); the blocks of a page
  not marked run in order in one namespace, as a reader would paste them, in
  `test_docs_page_runs` (slow). Pages in `OWN_TESTS` are run by their own
  test module instead. Shell blocks of docs pages are not run here.
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250
SKIP = "<!-- skip-test -->"
# Pages whose code runs elsewhere, and why.
OWN_TESTS = {
    "psf_from_beads.md": "tests/test_psf_from_beads_doc.py runs it at 64x64",
    "deblur.md": "it reads your frames and model files; tests/inference covers the API",
}

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", flags=re.M | re.S)
# [text](target) and ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def code_blocks(path):
    """(language, code, skipped, line number) of every fenced block of `path`."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        skipped = bool(before) and before[-1].strip() == SKIP
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((match.group(1), match.group(2), skipped, line))
    return blocks


def relative_links(path):
    """Link targets of `path` outside code blocks, without web links or anchors."""
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_readme_fits_on_a_screen():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, at most {MAX_README_LINES}: "
        "move reference and how-tos to docs/*.md and link them"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_to_files(page):
    broken = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in relative_links(README)}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_shell_blocks_of_the_readme_are_marked():
    unmarked = [
        line
        for language, _, skipped, line in code_blocks(README)
        if language in ("bash", "sh") and not skipped
    ]
    assert not unmarked, (
        f"README.md lines {unmarked}: shell blocks are not run here; put {SKIP} "
        "on the line before them"
    )


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.name)
def test_python_blocks_of_docs_compile(page):
    for language, code, _, line in code_blocks(page):
        if language == "python":
            compile(code, f"{page.name}:{line}", "exec")


README_PYTHON = [
    pytest.param(code, id=f"line{line}")
    for language, code, skipped, line in code_blocks(README)
    if language == "python" and not skipped
]


def test_readme_has_python_blocks_to_run():
    assert len(README_PYTHON) >= 2


@pytest.mark.parametrize("code", README_PYTHON)
def test_readme_code_block(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_block"})


def runnable_python(page):
    return [
        (code, line)
        for language, code, skipped, line in code_blocks(page)
        if language == "python" and not skipped
    ]


RUNNABLE_PAGES = [
    p for p in PAGES[1:] if p.name not in OWN_TESTS and runnable_python(p)
]


def test_docs_pages_have_code_to_run():
    assert len(RUNNABLE_PAGES) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: p.name)
def test_docs_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs_page"}
    for code, line in runnable_python(page):
        exec(compile(code, f"{page}:{line}", "exec"), namespace)


WEIGHTS = ROOT / "coordgate_keras" / "zoo" / "weights"


def weights_table_rows(path):
    """{(model, tag): (params, psnr, ssim)} of the weights table in `path`."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
        if len(cells) != 7 or not cells[1].startswith("`zernike"):
            continue
        model = re.match(r"`(\w+)`", cells[0]).group(1)
        rows[model, cells[1].strip("`")] = (cells[2], cells[5], cells[6])
    return rows


@pytest.mark.parametrize(
    "page", [README, ROOT / "docs" / "zoo_and_weights.md"], ids=lambda p: p.name
)
def test_weights_table_matches_the_sidecars(page):
    """The held-out numbers of the weights table are those of the JSON sidecars."""
    rows = weights_table_rows(page)
    sidecars = [json.loads(p.read_text()) for p in sorted(WEIGHTS.glob("*.json"))]
    assert len(rows) == len(sidecars) > 0
    for meta in sidecars:
        expected = (
            f"{meta['num_params']:,}",
            f"{meta['metrics']['psnr']:.2f}",
            f"{meta['metrics']['ssim']:.4f}",
        )
        key = (meta["model"], meta["tag"])
        assert rows.get(key) == expected, f"{page.name}: {key}"
    blurred = {
        (f"{m['metrics']['psnr_blurred']:.2f}", f"{m['metrics']['ssim_blurred']:.4f}")
        for m in sidecars
    }
    row = re.search(
        r"^\| blurred input \|.*\| ([\d.]+) \| ([\d.]+) \|$", page.read_text(), re.M
    )
    assert blurred == {row.groups()}, page.name


@pytest.mark.slow  # the demo's Keras part at its default size
def test_readme_demo_table_is_what_the_demo_prints_now(tmp_path):
    """The PSNR / SSIM table in the README's demo output is a run of today's
    code: each number within the rounding of its printed digits."""
    from coordgate_keras.demo import DemoOptions, run_demo

    printed = {}
    for line in README.read_text().splitlines():
        match = re.match(r"^(blurred input|\w+)\s+(\d+\.\d\d)\s+(\d\.\d{4})\s+", line)
        if match:
            printed[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    assert set(printed) == {"blurred input", "unet_d2", "coordgate_unet_d2"}
    report = run_demo(DemoOptions(out_dir=str(tmp_path), export=False), verbose=False)
    now = {row["name"]: (row["psnr"], row["ssim"]) for row in report["scores"]}
    assert set(now) == set(printed)
    for name, (psnr, ssim) in printed.items():
        assert now[name][0] == pytest.approx(psnr, abs=0.0051), name
        assert now[name][1] == pytest.approx(ssim, abs=0.000051), name


STUDY_TABLES = [
    # (results.json, the header of its table in docs/reproduction.md)
    (
        "deblur2d/full_h100",
        "| model | params | PSNR (dB) | SSIM | PSNR at init | TFLite ms (CPU) |",
    ),
    ("deblur2d/quick", "| model | params | PSNR (dB) | SSIM | PSNR at init |"),
]


def study_table_psnr(page, header):
    """{model: "mean[ ± std]"} of the table under `header`: rows naming models
    in backticks, `a` / `_dN` rows expanded (`unet_d1` / `_d2` -> unet_d1,
    unet_d2), and the blurred input."""
    lines = page.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == header)
    values = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
        first = re.sub(r"\s*\(\d seeds?\)$", "", cells[0])
        if first == "blurred input":
            values[first] = cells[2]
            continue
        names = [n.strip() for n in first.split(" / ")]
        if not all(re.fullmatch(r"`\w+`", n) for n in names):
            continue  # a labelled variant (e.g. MultiWienerNet with batch norm)
        names = [n.strip("`") for n in names]
        names = [names[0]] + [names[0].rsplit("_d", 1)[0] + n for n in names[1:]]
        scores = [s.strip() for s in cells[2].split(" / ")]
        assert len(scores) == len(names), line
        values.update(zip(names, scores))
    return values


@pytest.mark.parametrize("folder, header", STUDY_TABLES, ids=lambda v: str(v)[:20])
def test_study_tables_match_their_results(folder, header):
    """The 2D study's PSNRs in docs/reproduction.md are those of its results.json."""
    results = json.loads(
        (ROOT / "benchmarks" / "results" / folder / "results.json").read_text()
    )
    table = study_table_psnr(ROOT / "docs" / "reproduction.md", header)
    assert len(table) >= 6 and "blurred input" in table
    for name, text in table.items():
        if name == "blurred input":
            assert text == f"{results['blurred']['psnr']:.2f}", name
            continue
        row = results["models"][name]
        mean, std = row["psnr_mean"], row["psnr_std"]
        shown = [f"{mean:.2f}"] + ([] if std is None else [f"{std:.2f}"])
        assert text.split(" ± ") == shown, name
