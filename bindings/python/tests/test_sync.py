"""Paralegal and supervisor devices through the bindings against a real
`intake-server`: enrolment, sync with progress, a conflict seen with who wrote what
and resolved, review, reassignment, the server's revocation and wipe order, the
background sync's callback, and offline as a typed, retryable error."""

import os
import threading

import pytest

from conftest import fields


def inputs(ib, **values):
    return [ib.FieldInput(field=k, value=v) for k, v in values.items()]


class Progress:
    """A progress callback that keeps every report."""

    def __init__(self, ib):
        self.reports = []
        base = ib.SyncProgress

        class Impl(base):
            def on_progress(inner, report):  # noqa: N805 (closure over self)
                self.reports.append(report)

        self.impl = Impl()


def test_two_devices_conflict_resolve_review_reassign_and_wipe(ib, person):
    para, para_name, para_dir = person("paralegal")
    sup, sup_name, _ = person("supervisor")
    hana, hana_name, _ = person("paralegal")
    rid = para.create_record(
        "intake", inputs(ib, full_name="Drita Krasniqi", consent_intake="yes", summary="school"))
    para.submit(rid)
    assert para.list_records(ib.RecordFilter(unsynced=True))[0].id == rid
    assert para.sync(None, None).sent == 1
    assert para.list_records(ib.RecordFilter(unsynced=True)) == []
    assert sup.sync(None, None).received == 1
    assert sup.show_record(rid).status == ib.Status.SUBMITTED

    # The same field edited in two places before either syncs.
    para.edit_record(rid, inputs(ib, summary="school refuses enrolment"), [])
    sup.edit_record(rid, inputs(ib, summary="enrolment refused"), [])
    para.sync(None, None)
    sup.sync(None, None)
    para.sync(None, None)
    for store in (para, sup):
        assert [r.id for r in store.list_records(ib.RecordFilter(has_conflicts=True))] == [rid]
    [conflict] = para.show_record(rid).conflicts
    assert conflict.field == "summary" and not conflict.review
    assert sorted((v.author, v.display) for v in conflict.values) == [
        (para_name, "school refuses enrolment"), (sup_name, "enrolment refused")]
    devices = {v.device for v in conflict.values}
    assert len(devices) == 2 and all(d for d in devices)
    assert all(v.at for v in conflict.values)
    with pytest.raises(ib.IntakeError.InvalidInput):
        para.resolve_conflict(rid, "full_name", "Drita")  # no conflict there
    para.resolve_conflict(rid, "summary", "school refuses enrolment (confirmed)")
    para.sync(None, None)
    sup.sync(None, None)
    view = sup.show_record(rid)
    assert view.conflicts == []
    assert fields(view)["summary"] == "school refuses enrolment (confirmed)"

    # Review: the supervisor sends it back with a note; the paralegal sees it.
    sup.set_status(rid, ib.Status.NEEDS_CHANGES, "re-ask consent in Albanian")
    sup.add_comment(rid, "see the note")
    sup.sync(None, None)
    para.sync(None, None)
    [row] = para.list_records(ib.RecordFilter(needs_changes=True))
    assert row.id == rid and row.review_note == "re-ask consent in Albanian"
    view = para.show_record(rid)
    assert view.status == ib.Status.NEEDS_CHANGES
    assert [(c.author, c.text) for c in view.comments] == [(sup_name, "see the note")]

    # Reassigned to another paralegal of the team, who receives it.
    sup.assign(rid, hana_name)
    sup.sync(None, None)
    assert hana.sync(None, None).received == 1
    assert hana.show_record(rid).assigned_to == hana_name

    # Quick wipe of the paralegal's phone.
    para.wipe()
    assert not os.path.exists(para_dir)
    with pytest.raises(ib.IntakeError.Wiped):
        para.sync(None, None)


def test_a_sync_reports_monotonic_progress(ib, person):
    para, _, _ = person("paralegal")
    sup, _, _ = person("supervisor")
    for i in range(5):
        para.create_record("intake", inputs(ib, full_name=f"Client {i}"))
    # One record per push (five round trips up) and the smallest pages (several
    # round trips down), so there is progress to report.
    small = ib.SyncSettings(page_bytes=1, push_bytes=65536, max_records=1)
    for store, moved, trips in ((para, "sent", 5), (sup, "received", 2)):
        progress = Progress(ib)
        summary = store.sync(progress.impl, small)
        reports = progress.reports
        assert len(reports) == summary.requests >= trips, reports
        for name in (moved, "requests", "bytes_up", "bytes_down"):
            values = [getattr(r, name) for r in reports]
            assert values == sorted(values), (name, values)
        counts = [getattr(r, moved) for r in reports]
        assert counts[0] < counts[-1] == getattr(summary, moved) == 5, counts
        # The server said "more" until the last page.
        assert [r.more for r in reports][-1] is False
    assert [r.more for r in reports][0] is True


def test_revocation_and_the_wipe_order_are_typed_errors(ib, server, person):
    para, name, directory = person("paralegal")
    para.create_record("intake", inputs(ib, full_name="Drita"))
    para.sync(None, None)
    server.admin("device", "revoke", str(server.device_id(name)))
    with pytest.raises(ib.IntakeError.Revoked):
        para.sync(None, None)
    # The records stay readable on a revoked device (its user may still need them).
    assert len(para.list_records(ib.RecordFilter())) == 1

    lost, lost_name, lost_dir = person("paralegal")
    lost.create_record("intake", inputs(ib, full_name="Drita"))
    server.admin("device", "revoke", str(server.device_id(lost_name)), "--wipe")
    with pytest.raises(ib.IntakeError.Wiped):
        lost.sync(None, None)
    # Every file of the store is gone, and with them its directory.
    assert not os.path.exists(lost_dir)
    with pytest.raises(ib.IntakeError.Wiped):
        lost.list_records(ib.RecordFilter())


def test_background_sync_tells_the_app_when_records_changed(ib, person):
    para, _, _ = person("paralegal")
    sup, _, _ = person("supervisor")
    changed = threading.Event()
    seen = []

    class Listener(ib.SyncListener):
        def records_changed(self, report):
            seen.append(report)
            changed.set()

        def sync_failed(self, reason, retryable, stopped):
            seen.append(("failed", reason, retryable, stopped))

    sup.start_background_sync(1, Listener())
    try:
        rid = para.create_record("intake", inputs(ib, full_name="Drita"))
        para.sync(None, None)
        assert changed.wait(timeout=20), seen
    finally:
        sup.stop_background_sync()
    assert seen[0].received == 1
    assert sup.show_record(rid).id == rid


def test_not_enrolled_and_offline_are_typed_errors(ib, new_store):
    store, _, _ = new_store("solo")
    with pytest.raises(ib.IntakeError.NotEnrolled):
        store.sync(None, None)
    # Nothing listens on port 9 of this machine.
    with pytest.raises(ib.IntakeError.Offline):
        store.enroll("http://127.0.0.1:9", "code", "phone", None)
    assert store.enrolment() is None
