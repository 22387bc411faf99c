"""The language choice and the catalog machinery (what is translated is tested with each area)."""
from __future__ import annotations

import gettext
import importlib.util

import pytest

from conftest import ROOT, run_cli
from gradexplain.errors import GradexplainError
from gradexplain.i18n import Msg, language, language_from_environment, resolve_language, translate


def build_script():
    spec = importlib.util.spec_from_file_location("build_catalogs", ROOT / "scripts" / "build_catalogs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("environ, expected", [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),  # LC_ALL wins over LANG, as POSIX says
    ({"LC_MESSAGES": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"GRADEXPLAIN_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),  # ours first
    ({"LANG": "fr_FR.UTF-8"}, "en"),  # no catalog: English
])
def test_the_environment_chooses_the_language(environ, expected):
    assert language_from_environment(environ) == expected


def test_lang_option_beats_the_environment_and_is_validated():
    assert resolve_language("zh", {"LANG": "en_US.UTF-8"}) == "zh"
    with pytest.raises(GradexplainError, match="--lang must be one of en | zh"):
        resolve_language("klingon", {})
    r = run_cli("eval", "x*x", "x=2", "--lang", "fr")
    assert r.code == 2 and r.stderr.startswith("error: --lang must be one of")


def test_a_msg_is_its_english_text_and_translates_by_template():
    m = Msg("{name} has no gradient", name="x")
    assert m == "x has no gradient" and isinstance(m, str)
    assert translate(m, "en") == "x has no gradient"
    assert translate(Msg("not a catalog entry {n}", n=1), "zh") == "not a catalog entry 1"  # unknown: English


def test_the_shipped_catalog_is_the_compilation_of_the_po_files():
    build = build_script()
    for lang in build.languages():
        compiled = build.compile_mo(build.translations(lang))
        assert build.mo_path(lang).read_bytes() == compiled, "run python scripts/build_catalogs.py"
        catalog = gettext.GNUTranslations(open(build.mo_path(lang), "rb"))
        for msgid, msgstr in build.translations(lang).items():
            assert catalog.gettext(msgid) == msgstr


def test_zh_reads_the_catalog():
    with language("zh"):
        from gradexplain.i18n import _

        assert _(Msg("--lang must be one of {choices}, not {value!r}", choices="en | zh", value="x")).startswith("--lang 只能是")


def test_every_message_id_has_a_chinese_translation():
    """Every message id (the markers in the package and every --help text) is translated, with the
    same {fields}, and the shipped catalogs are the compilation of the .po files."""
    build = build_script()
    assert build.problems(build.all_messages()) == []
