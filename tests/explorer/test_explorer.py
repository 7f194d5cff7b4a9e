"""What a person sees in the web explorer, driven through Debian's headless Chromium over the
real gateway (see conftest.py): search, a material and its downloads, its ledger entry with
the inclusion proof, a campaign, and the error and empty states."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pymatgen.core import Composition, Structure

LAB = "lab-a"  # conftest.LAB: the lab whose signed upload the home holds

pytestmark = pytest.mark.slow

ELEMENT = re.compile(r"[A-Z][a-z]?")


def elements_of(formula: str) -> set[str]:
    return set(ELEMENT.findall(formula))


def search(page, filter_text: str) -> None:
    page.goto("/explorer/index.html")
    page.get_by_label("OPTIMADE filter").fill(filter_text)
    page.get_by_role("button", name="Search").click()


def result_rows(page, filter_text: str | None = None):
    """The rows on show, once the answer to ``filter_text`` (if given) is drawn."""
    if filter_text:
        page.locator("#summary", has_text=f"matching {filter_text}").wait_for()
    page.locator("#results-table tbody tr").first.wait_for()
    return page.locator("#results-table tbody tr")


def uploaded(api) -> list[dict]:
    body = api.get("/optimade/v1/structures",
                   params={"filter": f'_materialabs_lab = "{LAB}"'}).json()
    assert body["data"], f"the gateway lists none of {LAB}'s uploaded materials"
    return body["data"]


def test_simple_fields_compose_a_filter_and_the_rows_match_it(page, api):
    page.goto("/")  # the gateway's root is the explorer's search page
    assert page.url.endswith("/explorer/")
    page.get_by_label("Elements").fill("Ti, O")
    shown = page.get_by_label("OPTIMADE filter")
    assert shown.input_value() == 'elements HAS ALL "Ti", "O"'
    page.get_by_role("button", name="Search").click()
    rows = result_rows(page, 'elements HAS ALL "Ti", "O"')
    formulas = [text.strip() for text in rows.locator("td:first-child").all_inner_texts()]
    assert formulas and all({"Ti", "O"} <= elements_of(f) for f in formulas), formulas
    expected = api.get("/optimade/v1/structures", params={
        "filter": 'elements HAS ALL "Ti", "O"', "page_limit": 25}).json()
    assert formulas == [item["attributes"]["chemical_formula_reduced"] for item in expected["data"]]
    total = expected["meta"]["data_returned"]
    assert f"of {total}" in page.locator("#summary").inner_text()
    assert "filter=" in page.url, "the search is not in the address (bookmark, back button)"


def test_every_simple_field_gives_a_filter_the_gateway_accepts(page):
    page.goto("/explorer/index.html")
    page.get_by_label("Elements").fill("Sr O")
    page.get_by_label("Band gap from").fill("0")
    page.get_by_label("Band gap to").fill("9")
    page.get_by_label("Crystal system").select_option("cubic")
    page.get_by_label("Stable only").check()
    composed = page.get_by_label("OPTIMADE filter").input_value()
    for clause in ('elements HAS ALL "Sr", "O"', "_materialabs_band_gap >= 0",
                   "_materialabs_band_gap <= 9", '_materialabs_crystal_system = "cubic"',
                   "_materialabs_e_above_hull <= 0.025"):
        assert clause in composed, composed
    page.get_by_role("button", name="Search").click()
    page.wait_for_function("document.getElementById('status').className !== 'status loading'")
    assert "error" not in (page.locator("#status").get_attribute("class") or ""), \
        page.locator("#status").inner_text()


def test_results_page_through(page, api):
    meta = api.get("/optimade/v1/structures", params={"page_limit": 1}).json()["meta"]
    total = meta["data_returned"]
    assert total > 25, "the home is too small to page through"
    page.goto("/explorer/index.html")
    result_rows(page)
    assert page.locator("#summary").inner_text().startswith(f"Materials 1–25 of {total}")
    page.get_by_role("button", name="Next →").click()
    page.get_by_text("Materials 26–").wait_for()
    page.go_back()
    page.get_by_text("Materials 1–25").wait_for()


def test_a_mistyped_element_is_pointed_out_and_left_out_of_the_filter(page):
    page.goto("/explorer/index.html")
    page.get_by_label("Elements").fill("Ti, ox")
    assert page.get_by_label("OPTIMADE filter").input_value() == 'elements HAS ALL "Ti"'
    assert "not element symbols: ox" in page.locator("#field-problems").inner_text()


def test_sorting_orders_the_rows_as_the_gateway_does(page, api):
    page.goto("/explorer/index.html")
    result_rows(page)
    page.get_by_label("Sort by").select_option(label="band gap, largest first")
    page.wait_for_url(re.compile(r"sort=-_materialabs_band_gap"))
    page.wait_for_function("document.getElementById('status').className !== 'status loading'")
    gaps = [text.split("±")[0].strip() for text in
            page.locator("#results-table tbody tr td:nth-child(4)").all_inner_texts()]
    numbers = [float(g) for g in gaps if g != "—"]
    assert numbers and numbers == sorted(numbers, reverse=True), gaps
    expected = api.get("/optimade/v1/structures", params={
        "sort": "-_materialabs_band_gap", "page_limit": 25}).json()["data"]
    ids = [link.get_attribute("href").split("id=")[1]
           for link in page.locator("#results-table tbody tr td:first-child a").all()]
    assert ids == [item["id"] for item in expected]


def test_a_promoted_candidate_links_to_its_prediction_and_dft_result(page, api):
    promoted = api.get("/optimade/v1/structures", params={
        "filter": '_materialabs_promoted = "dft_confirmed"'}).json()["data"]
    assert promoted, "the campaign promoted no DFT-confirmed candidate"
    item = promoted[0]
    page.goto(f"/explorer/material.html?id={item['id']}")
    provenance = page.locator("#provenance")
    provenance.get_by_text("dft confirmed").wait_for()
    provenance.get_by_role("link", name=re.compile("every observation of this crystal")).click()
    candidate = item["attributes"]["_materialabs_candidate_id"]
    rows = result_rows(page, f'_materialabs_candidate_id = "{candidate}"')
    sources = {text.split(" ")[0] for text in rows.locator("td:last-child").all_inner_texts()}
    assert {"prediction", "dft"} <= sources, sources


def test_a_filter_matching_nothing_says_so(page):
    search(page, 'elements HAS "Ti" AND nelements = 9')
    status = page.locator("#status")
    status.get_by_text("No materials match this filter.").wait_for()
    assert page.locator("#results-table tbody tr").count() == 0


def test_a_bad_filter_shows_the_servers_error_message(page, api):
    bad = 'elements HAS "Ti" AND ('
    answer = api.get("/optimade/v1/structures", params={"filter": bad})
    assert answer.status_code == 400
    detail = answer.json()["errors"][0]["detail"]
    search(page, bad)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert detail in alert.inner_text()
    assert page.locator("#results").is_hidden()


def test_material_page_shows_formula_lattice_sites_and_a_picture(page, api):
    item = uploaded(api)[0]
    attributes = item["attributes"]
    search(page, f'_materialabs_lab = "{LAB}"')
    result_rows(page, f'_materialabs_lab = "{LAB}"')
    page.locator(f'#results-table a[href="material.html?id={item["id"]}"]').click()
    page.wait_for_url(re.compile(r"material\.html\?id="))
    heading = page.get_by_role("heading", level=1)
    heading.wait_for()
    assert Composition(heading.locator(".formula").inner_text()).reduced_formula == \
        Composition(attributes["chemical_formula_reduced"]).reduced_formula
    structure = Structure(attributes["lattice_vectors"], attributes["species_at_sites"],
                          attributes["cartesian_site_positions"], coords_are_cartesian=True)
    lattice = page.locator("#lattice").inner_text()
    assert f"{structure.lattice.a:.4f} Å" in lattice and "90.00°" in lattice, lattice
    sites = page.locator("#sites tbody tr")
    assert sites.count() == len(structure)
    assert [sites.nth(i).locator("td").nth(1).inner_text() for i in range(sites.count())] == \
        attributes["species_at_sites"]
    picture = page.get_by_role("img", name=re.compile("Unit cell of"))
    drawn = {circle.get_attribute("data-species") for circle in picture.locator("circle").all()}
    assert drawn == set(attributes["elements"])
    before = _drawn_positions(picture)
    picture.focus()
    page.keyboard.press("ArrowRight")
    assert _drawn_positions(picture) != before, "the arrow keys do not rotate the picture"
    box = picture.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 20)
    page.mouse.up()
    assert _drawn_positions(picture) != before, "dragging does not rotate the picture"
    properties = page.locator("#properties").inner_text()
    assert "eV/atom" in properties and " eV" in properties
    provenance = page.locator("#provenance").inner_text()
    assert LAB in provenance and attributes["_materialabs_cid"] in provenance


def _drawn_positions(picture) -> list[tuple[str, str]]:
    return sorted((c.get_attribute("cx"), c.get_attribute("cy"))
                  for c in picture.locator("circle").all())


@pytest.mark.parametrize(("label", "suffix"), [("CIF", "cif"), ("POSCAR", "vasp"),
                                               ("pymatgen JSON", "json")])
def test_download_a_structure_file_with_the_same_composition(page, api, tmp_path: Path,
                                                              label: str, suffix: str):
    item = uploaded(api)[0]
    page.goto(f"/explorer/material.html?id={item['id']}")
    link = page.get_by_role("link", name=label, exact=True)
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"{item['id']}.{suffix}"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    if suffix == "json":
        structure = Structure.from_dict(json.loads(saved.read_text()))
    else:
        structure = Structure.from_file(saved)
    expected = Composition(item["attributes"]["chemical_formula_reduced"])
    assert structure.composition.reduced_composition == expected.reduced_composition
    assert len(structure) == item["attributes"]["nsites"]


def test_the_ledger_link_opens_the_entry_with_a_proof_that_checks_out(page, api, explorer_home,
                                                                      tmp_path):
    item = uploaded(api)[0]
    sequence = item["attributes"]["_materialabs_ledger_sequence"]
    assert isinstance(sequence, int), "an uploaded material has no ledger sequence"
    page.goto(f"/explorer/material.html?id={item['id']}")
    page.get_by_role("link", name=re.compile(f"entry {sequence}")).click()
    page.wait_for_url(re.compile(f"ledger\\.html#entry-{sequence}$"))
    entry = page.locator("#entry")
    entry.get_by_role("heading", name=f"Entry {sequence}").wait_for()
    page.locator("#proof").wait_for()
    fields = page.locator("#entry-fields").inner_text()
    assert "dataset" in fields and LAB in fields
    assert item["attributes"]["_materialabs_cid"] in fields
    receipt = api.get(f"/api/v1/ledger/entries/{sequence}").json()
    proof_text = page.locator("#proof").inner_text()
    for path_hash in _audit_path(receipt):
        assert path_hash in proof_text
    assert page.locator("#proof-verdict").inner_text().startswith("✔ Proof checks out")
    head = api.get("/api/v1/ledger/head").json()
    size = head.get("tree_size", head.get("tree_head", {}).get("tree_size"))
    assert str(size) in page.locator("#head").inner_text()
    page.locator(f"#entries a[href='#entry-{sequence}']").wait_for()
    # The receipt the page offers is one the auditor's command accepts.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="save the receipt").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    checked = subprocess.run(
        [sys.executable, "-m", "materialabs", "ledger", "verify-proof", str(saved),
         "--ledger-key", str(explorer_home / "ledger" / "ledger.pub")],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _audit_path(receipt: dict) -> list[str]:
    for key in ("receipt", "inclusion_proof", "inclusion", "proof"):
        if isinstance(receipt.get(key), dict) and "audit_path" in receipt[key]:
            return receipt[key]["audit_path"]
    return receipt["audit_path"]


def test_a_missing_ledger_entry_is_an_error_not_a_blank_page(page):
    page.goto("/explorer/ledger.html#entry-999999")
    page.locator("#entry").get_by_role("alert").wait_for()


def test_campaign_page_shows_rounds_discovery_against_random_and_promoted_once(page, api):
    campaigns = api.get("/api/v1/campaigns").json()["campaigns"]
    campaign = next(c for c in campaigns if c["name"] == "browser-oxides")
    page.goto("/explorer/campaigns.html")
    page.get_by_role("link", name="browser-oxides").click()
    page.wait_for_url(re.compile(r"campaign\.html\?id="))
    page.get_by_role("heading", level=1, name="browser-oxides").wait_for()
    rounds = page.locator("#rounds tbody tr")
    rounds.first.wait_for()
    assert rounds.count() == campaign["rounds"] == 2
    discovery = page.get_by_role("img", name=re.compile("Discovery curve"))
    assert discovery.locator("g.series[data-series='found'] path").count() == 1
    assert discovery.locator("g.series[data-series='random'] path").count() == 1
    assert "random baseline" in page.locator("#discovery .legend").inner_text()
    parity = page.get_by_role("img", name=re.compile("Parity plot"))
    detail = api.get(f"/api/v1/campaigns/{campaign['campaign_id']}").json()
    with_both = [p for p in detail["parity"] if p["predicted"] is not None and p["dft"] is not None]
    assert parity.locator("g.series[data-series='candidates'] circle").count() == len(with_both) > 0
    promoted = page.locator("#promoted tbody tr")
    assert promoted.count() == campaign["promoted"] > 0
    ids = [row.get_attribute("data-id") for row in promoted.all()]
    assert len(set(ids)) == len(ids), f"a candidate is listed twice: {ids}"
    for row in promoted.all():
        mp = row.locator("td").nth(4).inner_text().strip()
        assert mp == "new" or mp.startswith("mp-"), mp


def test_a_campaign_that_does_not_exist_is_an_error(page):
    page.goto("/explorer/campaign.html?id=no-such-campaign")
    page.get_by_role("alert").wait_for()


def test_the_chromium_check_fails_and_says_to_run_make_install(chromium_check, monkeypatch,
                                                                tmp_path):
    monkeypatch.setenv("MATERIALABS_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match="make install"):
        chromium_check()


@pytest.mark.parametrize("path", ["index.html", "material.html?id={material}", "campaigns.html",
                                  "campaign.html?id={campaign}", "ledger.html#entry-{sequence}"])
def test_every_page_is_labelled_for_assistive_technology(page, api, path: str):
    material = uploaded(api)[0]
    campaign = api.get("/api/v1/campaigns").json()["campaigns"][0]["campaign_id"]
    page.goto("/explorer/" + path.format(material=material["id"], campaign=campaign,
                                         sequence=material["attributes"]["_materialabs_ledger_sequence"]))
    page.wait_for_load_state("networkidle")
    problems = page.evaluate("""() => {
      const out = [];
      if (!document.documentElement.lang) out.push("no lang on <html>");
      if (document.querySelectorAll("h1").length !== 1) out.push("not exactly one h1");
      if (!document.title) out.push("no title");
      for (const c of document.querySelectorAll("input, select, textarea")) {
        const named = (c.labels && c.labels.length) || c.getAttribute("aria-label");
        if (!named) out.push(`unlabelled ${c.id}`);
      }
      for (const g of document.querySelectorAll("svg[role=img]")) {
        if (!g.getAttribute("aria-label")) out.push("an unlabelled picture");
      }
      for (const a of document.querySelectorAll("a")) {
        const named = a.textContent.trim() || a.getAttribute("aria-label");
        if (!named) out.push(`empty link ${a.href}`);
      }
      for (const t of document.querySelectorAll("table")) {
        if (!t.querySelector("th")) out.push("a table without headers");
      }
      return out;
    }""")
    assert problems == []
