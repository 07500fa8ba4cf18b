"""The store through the bindings, without a server: creating and opening with a
passphrase or a raw key, the wrong key, lock and quick wipe, the forms and their
labels, values checked with the form's message in the chosen language, and records
created, edited and shown as typed records."""

import os

import pytest

from conftest import PASSPHRASE, fields, files_of


def test_forms_are_labelled_in_the_language_asked_with_the_fallback_chain(ib):
    assert "sr-Cyrl" in ib.languages()
    assert ib.record_forms() == ["intake"]
    cyr = ib.form("intake", "sr-Cyrl")
    name = next(f for f in cyr.fields if f.name == "full_name")
    assert name.label == "Име и презиме"
    assert name.required and name.sensitive and name.kind == ib.FieldKind.TEXT
    gender = next(f for f in cyr.fields if f.name == "gender")
    assert gender.kind == ib.FieldKind.CHOICE
    assert [c.value for c in gender.choices][:2] == ["female", "male"]
    # Messages exist in four languages: Bosnian falls back to Serbian (Latin) and
    # Turkish to Albanian, the next in their chains, while the labels are their own.
    for lang, message in [("bs", "nije ceo broj"), ("tr", "nuk është numër i plotë")]:
        with pytest.raises(ib.IntakeError.InvalidValue) as e:
            ib.validate_value("intake", "birth_year", "x", lang)
        assert e.value.reason == message
    assert ib.form("intake", "tr").title == "Vaka kabul formu"
    followup = ib.form("followup", "en")
    assert [f.name for f in followup.fields if f.required] == ["date", "type"]
    with pytest.raises(ib.IntakeError.InvalidInput):
        ib.form("intake", "xx")


def test_a_bad_value_is_the_typed_error_with_its_message_in_serbian_cyrillic(ib, new_store):
    with pytest.raises(ib.IntakeError.InvalidValue) as e:
        ib.validate_value("intake", "birth_year", "nineteen", "sr-Cyrl")
    assert e.value.field == "birth_year"
    assert e.value.label == "Година рођења"
    assert e.value.reason == "није цео број"
    ib.validate_value("intake", "birth_year", "1990", "sr-Cyrl")

    store, _, _ = new_store("drita", "sr-Cyrl")
    with pytest.raises(ib.IntakeError.InvalidValue) as e:
        store.create_record(
            "intake",
            [ib.FieldInput(field="full_name", value="Drita"),
             ib.FieldInput(field="intake_date", value="19.4.2026")],
        )
    assert e.value.field == "intake_date"
    assert e.value.reason == "није датум (очекивано ГГГГ-ММ-ДД)"
    # Nothing was created.
    assert store.list_records(ib.RecordFilter()) == []


def test_records_are_created_edited_and_shown_as_typed_records(ib, new_store):
    store, _, _ = new_store("arta")
    rid = store.create_record(
        "intake",
        [ib.FieldInput(field="full_name", value="Drita Krasniqi"),
         ib.FieldInput(field="gender", value="female"),
         ib.FieldInput(field="birth_year", value="1990")],
    )
    store.edit_record(rid, [ib.FieldInput(field="municipality", value="prizren")], ["gender"])
    store.add_comment(rid, "called back on Monday")
    store.add_followup(rid, [ib.FieldInput(field="date", value="2026-04-20"),
                             ib.FieldInput(field="type", value="visit")])
    view = store.show_record(rid)
    assert view.status == ib.Status.DRAFT and view.form == "intake"
    assert fields(view) == {"full_name": "Drita Krasniqi", "birth_year": "1990",
                            "municipality": "Prizren"}
    year = next(f for f in view.fields if f.name == "birth_year")
    assert year.value == ib.FieldValue.INTEGER(1990)
    assert [c.text for c in view.comments] == ["called back on Monday"]
    assert [{f.name: f.display for f in a.fields} for a in view.actions] == [
        {"date": "2026-04-20", "type": "Visit"}]
    assert view.unsynced
    # Consent is required: submitting says what is missing, in the store's language.
    store.set_language("sr-Cyrl")
    with pytest.raises(ib.IntakeError.Incomplete) as e:
        store.submit(rid)
    assert [(i.field, i.message) for i in e.value.issues] == [
        ("consent_intake", "обавезно: молимо одговорите")]
    assert store.show_record(rid).status == ib.Status.DRAFT
    store.edit_record(rid, [ib.FieldInput(field="consent_intake", value="yes")], [])
    store.submit(rid)
    assert store.show_record(rid).status == ib.Status.SUBMITTED
    assert [r.id for r in store.list_records(ib.RecordFilter(status=ib.Status.SUBMITTED))] == [rid]
    assert store.list_records(ib.RecordFilter(has_conflicts=True)) == []
    with pytest.raises(ib.IntakeError.NotFound):
        store.show_record("019b0000-0000-7000-8000-000000000000")


def test_a_wrong_key_or_passphrase_is_refused_and_leaves_the_files_byte_identical(ib, tmp_path):
    directory = str(tmp_path / "store")
    key = os.urandom(32)
    store = ib.IntakeStore.create_with_key(directory, key)
    store.create_record("intake", [ib.FieldInput(field="full_name", value="Drita")])
    store.lock()
    before = files_of(directory)
    wrong = bytes(b ^ 0xFF for b in key)
    with pytest.raises(ib.IntakeError.WrongPassphrase):
        ib.IntakeStore.open_with_key(directory, wrong)
    assert files_of(directory) == before
    with pytest.raises(ib.IntakeError.BadKey):
        ib.IntakeStore.open_with_key(directory, key[:16])
    reopened = ib.IntakeStore.open_with_key(directory, key)
    assert len(reopened.list_records(ib.RecordFilter())) == 1

    pdir = str(tmp_path / "passphrase")
    ib.IntakeStore.create_with_passphrase(pdir, PASSPHRASE).lock()
    before = files_of(pdir)
    with pytest.raises(ib.IntakeError.WrongPassphrase):
        ib.IntakeStore.open_with_passphrase(pdir, PASSPHRASE + "!")
    assert files_of(pdir) == before
    ib.IntakeStore.open_with_passphrase(pdir, PASSPHRASE)


def test_creating_needs_a_strong_passphrase_and_a_free_directory(ib, tmp_path):
    directory = str(tmp_path / "weak")
    with pytest.raises(ib.IntakeError.WeakPassphrase):
        ib.IntakeStore.create_with_passphrase(directory, "password1")
    assert not os.path.exists(directory)
    with pytest.raises(ib.IntakeError.NoStore):
        ib.IntakeStore.open_with_key(directory, os.urandom(32))
    ib.IntakeStore.create_with_key(directory, os.urandom(32))
    with pytest.raises(ib.IntakeError.StoreExists):
        ib.IntakeStore.create_with_key(directory, os.urandom(32))


def test_lock_closes_the_handle_and_quick_wipe_destroys_every_file(ib, new_store):
    store, directory, key = new_store("hana")
    rid = store.create_record("intake", [ib.FieldInput(field="full_name", value="Drita")])
    store.lock()
    with pytest.raises(ib.IntakeError.Locked):
        store.show_record(rid)
    store = ib.IntakeStore.open_with_key(directory, key)
    assert store.show_record(rid).id == rid
    store.wipe()
    assert not os.path.exists(directory)
    with pytest.raises(ib.IntakeError.Wiped):
        store.list_records(ib.RecordFilter())
    with pytest.raises(ib.IntakeError.NoStore):
        ib.IntakeStore.open_with_key(directory, key)
