"""The gateway over a real home: OPTIMADE (and the official validator), the explorer's JSON
API, downloads, the ledger's proofs, concurrent clients, and the query command's agreement."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from materialabs.cli import main

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = Path(sys.executable).with_name("optimade-validator")
EXAMPLE = ('_materialabs_crystal_system="hexagonal" AND _materialabs_band_gap>=1.0 AND '
           "_materialabs_band_gap<=2.0")


def structures(client: httpx.Client, **params: object) -> dict:
    response = client.get("/optimade/v1/structures", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- OPTIMADE ------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_optimade_validator_passes_every_required_and_optional_test(gateway):
    result = subprocess.run([str(VALIDATOR), f"{gateway}/optimade", "--json",
                             "--random-seed", "1"], capture_output=True, text=True, timeout=600)
    summary = json.loads(result.stdout)
    assert summary["failure_count"] == 0, summary["failure_messages"]
    assert summary["internal_failure_count"] == 0, summary["internal_failure_messages"]
    assert summary["optional_failure_count"] == 0, summary["optional_failure_messages"]
    assert summary["success_count"] >= 35 and summary["optional_success_count"] >= 7, summary
    assert result.returncode == 0


def test_every_base_url_alias_answers(client):
    for prefix in ("/optimade", "/optimade/v1", "/optimade/v1.2", "/optimade/v1.2.0"):
        info = client.get(f"{prefix}/info").json()
        assert info["data"]["attributes"]["api_version"] == "1.2.0", prefix
        assert client.get(f"{prefix}/structures", params={"page_limit": 1}).status_code == 200
    assert client.get("/optimade/versions").text == "version\n1\n"
    assert client.get("/optimade/v2/info").status_code == 553


def test_info_declares_our_fields_with_units(client):
    properties = client.get("/optimade/v1/info/structures").json()["data"]["properties"]
    assert properties["_materialabs_band_gap"]["unit"] == "eV"
    assert properties["_materialabs_formation_energy_per_atom"]["unit"] == "eV/atom"
    for name in ("_materialabs_ledger_sequence", "_materialabs_cid", "_materialabs_mp_id",
                 "_materialabs_campaign_id", "_materialabs_e_above_hull", "_materialabs_lab"):
        assert properties[name]["description"], name


def test_pagination_follows_next_links_to_every_match(client):
    first = structures(client, filter='elements HAS "O"', page_limit=7)
    returned = first["meta"]["data_returned"]
    assert returned > 7 and first["meta"]["more_data_available"]
    ids, page = [], first
    while True:
        ids += [e["id"] for e in page["data"]]
        if not page["links"]["next"]:
            break
        page = client.get(page["links"]["next"]).json()
    assert len(ids) == len(set(ids)) == returned


def test_filters_sorting_and_response_fields(client):
    uploads = structures(client, filter='_materialabs_source_kind="upload"', page_limit=100,
                         sort="-nsites", response_fields="nsites,_materialabs_mp_id,"
                                                         "_materialabs_ledger_sequence")
    data = uploads["data"]
    assert len(data) == 24
    assert all(set(e["attributes"]) == {"nsites", "_materialabs_mp_id",
                                        "_materialabs_ledger_sequence"} for e in data)
    sites = [e["attributes"]["nsites"] for e in data]
    assert sites == sorted(sites, reverse=True)
    assert all(e["attributes"]["_materialabs_mp_id"].startswith("mp-") for e in data)
    assert all(isinstance(e["attributes"]["_materialabs_ledger_sequence"], int) for e in data)
    promoted = structures(client, filter='_materialabs_promoted IS KNOWN AND '
                                         '_materialabs_source_kind="dft"')
    for item in promoted["data"]:
        assert item["attributes"]["_materialabs_status"] == "ok"
    only = structures(client, filter='elements HAS ONLY "O","Ti","Sr","Ba","Ca","Mg"',
                      page_limit=200)
    for item in only["data"]:
        assert set(item["attributes"]["elements"]) <= {"O", "Ti", "Sr", "Ba", "Ca", "Mg"}
    assert structures(client, filter=EXAMPLE)["meta"]["data_returned"] >= 0


def test_another_providers_field_is_a_warning_ours_unknown_is_an_error(client):
    other = structures(client, filter="_exmpl_whatever > 3")
    assert other["data"] == [] and "_exmpl_whatever" in other["meta"]["warnings"][0]["detail"]
    assert structures(client, filter="NOT _exmpl_whatever > 3")["meta"]["data_returned"] > 0
    ours = client.get("/optimade/v1/structures", params={"filter": "_materialabs_colour = 1"})
    assert ours.status_code == 400 and "_materialabs_colour" in ours.json()["errors"][0]["detail"]
    fields = client.get("/optimade/v1/structures", params={"response_fields": "_materialabs_x"})
    assert fields.status_code == 400


HOSTILE = [
    ("nelements >", 400), ('elements HAS "O', 400), ("nelements = \"three\"", 400),
    ('chemical_formula_reduced > 3', 400), ("bogus = 1", 400), ("_materialabs_nope = 1", 400),
    ("nelements > 1e999", 400), ("nelements > 99999999999999999999999999999", 200),
    ("elements LENGTH \"2\"", 400), ('elements HAS < "O"', 501), ("nelements = nsites", 501),
    ('elements:elements_ratios HAS "O":0.5', 501), ("a.b = 1", 501),
    ('lattice_vectors HAS 1', 501), ('species HAS "O"', 501),
    ("(" * 500 + "nelements=1" + ")" * 500, 400),
    ("(" * 45 + "nelements=1" + ")" * 45, 200),
    (" OR ".join(f"nelements={i}" for i in range(300)), 400),
    ("nelements=1 AND " * 2000 + "nsites=1", 400),
    ('chemical_formula_reduced = "' + "x" * 20_000 + '"', 400),
    ('chemical_formula_reduced = "\\"; DROP TABLE rows; --"', 200),
    ("NOT NOT nelements = 2", 400), ("NOT (NOT (NOT nelements = 2))", 200),
    ('"O" = 3', 501), ("3 = 4", 501), ("nelements = TRUE", 501),
]


@pytest.mark.parametrize(("text", "status"), HOSTILE)
def test_hostile_filters_get_the_specs_error_never_a_500(client, text, status):
    response = client.get("/optimade/v1/structures", params={"filter": text})
    assert response.status_code == status, (text[:80], response.text[:300])
    body = response.json()
    if status != 200:
        error = body["errors"][0]
        assert error["status"] == str(status) and error["detail"] and "Traceback" not in error[
            "detail"]
        assert body["meta"]["api_version"] == "1.2.0"


@pytest.mark.parametrize("params", [
    {"page_limit": "-1"}, {"page_limit": "ten"}, {"page_offset": "-5"},
    {"page_offset": "1" * 40}, {"sort": "lattice_vectors"}, {"sort": "bogus"},
    {"response_format": "xml"}, {"include": "references,authors"},
])
def test_bad_parameters_are_400_with_an_errors_document(client, params):
    response = client.get("/optimade/v1/structures", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["detail"]


def test_a_huge_page_limit_is_capped_with_a_warning(client):
    body = structures(client, page_limit=10**6)
    assert len(body["data"]) <= 500 and "capped" in body["meta"]["warnings"][0]["detail"]


# -- the explorer's API ---------------------------------------------------------------------

def test_downloads_in_three_formats_read_back(client):
    from pymatgen.core import Structure

    from materialabs.crystal_io import parse_cif

    item = structures(client, filter='_materialabs_source_kind="dft"', page_limit=1)["data"][0]
    sid, sites = item["id"], item["attributes"]["nsites"]
    cif = client.get(f"/api/v1/structures/{sid}/download", params={"format": "cif"})
    assert cif.status_code == 200
    assert cif.headers["content-disposition"] == f'attachment; filename="{sid}.cif"'
    assert parse_cif(cif.text).num_sites == sites
    poscar = client.get(f"/api/v1/structures/{sid}/download", params={"format": "poscar"})
    assert f'filename="{sid}.vasp"' in poscar.headers["content-disposition"]
    assert Structure.from_str(poscar.text, fmt="poscar").num_sites == sites
    data = client.get(f"/api/v1/structures/{sid}/download", params={"format": "json"})
    assert f'filename="{sid}.json"' in data.headers["content-disposition"]
    assert Structure.from_dict(data.json()).num_sites == sites
    assert client.get("/api/v1/structures/nope/download").status_code == 404
    bad = client.get(f"/api/v1/structures/{sid}/download", params={"format": "xyz"})
    assert bad.status_code == 400 and "format" in bad.json()["detail"]


def test_campaign_pages_data(client):
    campaigns = client.get("/api/v1/campaigns").json()["campaigns"]
    assert len(campaigns) == 1
    summary = campaigns[0]
    assert summary["name"] == "gateway-small" and summary["rounds"] == 2
    assert summary["dft_calls"] == 10
    detail = client.get(f"/api/v1/campaigns/{summary['campaign_id']}").json()
    assert [r["round"] for r in detail["rounds"]] == [0, 1]
    assert sum(r["dft_calls"] for r in detail["rounds"]) == 10
    discovery = detail["discovery"]
    assert discovery["dft_calls"] == list(range(1, 11))
    assert len(discovery["found"]) == len(discovery["random_expected"]) == 10
    assert discovery["found"] == sorted(discovery["found"])
    assert detail["promoted"] and len(detail["promoted"]) == summary["promoted"]
    counts = Counter(p["candidate_id"] for p in detail["promoted"])
    assert max(counts.values()) == 1, "one row per promoted candidate"
    for row in detail["promoted"]:
        assert set(row) >= {"id", "reduced_formula", "spacegroup_number",
                            "formation_energy_per_atom", "e_above_hull", "mp_id", "round"}
    assert all(p["dft"] is not None and p["predicted"] is not None for p in detail["parity"])
    assert client.get("/api/v1/campaigns/nope").status_code == 404


def test_ledger_head_entries_and_a_proof_the_auditor_accepts(client, gateway_home, tmp_path):
    from ledger.keys import read_public_key
    from ledger.verify import heads_in_document

    public = read_public_key(gateway_home / "ledger" / "ledger.pub")
    head = client.get("/api/v1/ledger/head").json()
    assert heads_in_document(head["tree_head"], public)[0].tree_size == head["tree_size"]
    assert head["ledger_public_key"] == public.hex() and len(head["key_id"]) == 16
    entries = client.get("/api/v1/ledger/entries", params={"limit": 50}).json()["entries"]
    sequences = [e["sequence"] for e in entries]
    assert sequences == sorted(sequences, reverse=True) and sequences[0] == head["tree_size"] - 1
    dataset = next(e for e in entries if e["kind"] == "dataset")
    assert dataset["lab"] == "lab-mp" and dataset["record_count"] == 24 and dataset["cid"]
    # The OPTIMADE entries of the upload name that ledger entry.
    linked = structures(client, filter=f"_materialabs_ledger_sequence={dataset['sequence']}")
    assert linked["meta"]["data_returned"] == 24
    answer = client.get(f"/api/v1/ledger/entries/{dataset['sequence']}").json()
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(answer["receipt"]))
    assert main(["ledger", "verify-proof", str(receipt), "--ledger-key",
                 str(gateway_home / "ledger" / "ledger.pub")]) == 0
    assert client.get("/api/v1/ledger/entries/99999").status_code == 404
    assert client.get("/api/v1/ledger/entries/x").status_code == 400
    assert client.get("/api/v1/ledger/entries", params={"limit": 0}).status_code == 400


def test_root_redirects_to_the_explorer_and_docs_work_offline(client):
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/explorer/"
    assert client.get("/explorer/").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
    assert "src=\"http" not in docs.text and "href=\"http" not in docs.text  # nothing outside
    spec = client.get("/openapi.json").json()
    assert "/optimade/v1/structures" in spec["paths"]
    assert "/api/v1/campaigns/{campaign_id}" in spec["paths"]


# -- load, and one engine ---------------------------------------------------------------------

def test_twenty_threads_of_twenty_requests_all_succeed(gateway):
    paths = ["/optimade/v1/structures?filter=" + EXAMPLE,
             '/optimade/v1/structures?filter=elements HAS ALL "O","Ti"&page_limit=50',
             "/optimade/v1/structures?sort=-_materialabs_band_gap&page_limit=5",
             "/api/v1/campaigns", "/api/v1/ledger/head", "/api/v1/ledger/entries?limit=5",
             "/optimade/v1/info/structures"]
    errors: list[str] = []

    def worker(index: int) -> None:
        with httpx.Client(base_url=gateway, timeout=60) as http:
            for i in range(20):
                path = paths[(index + i) % len(paths)]
                try:
                    status = http.get(path).status_code
                except httpx.HTTPError as error:
                    errors.append(f"{path}: {error!r}")
                    continue
                if status != 200:
                    errors.append(f"{path}: {status}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []


def test_query_command_and_gateway_answer_the_same_filter(client, gateway_home, capsys):
    text = 'elements HAS "O" AND nelements >= 3'
    assert main(["query", "--catalog", str(gateway_home / "catalog"), "--filter", text,
                 "--format", "jsonl", "--limit", "0"]) == 0
    ours = {json.loads(line)["record_id"] for line in capsys.readouterr().out.splitlines()}
    body = structures(client, filter=text, page_limit=500, response_fields="nelements")
    assert ours == {e["id"] for e in body["data"]} and len(ours) == body["meta"]["data_returned"]
