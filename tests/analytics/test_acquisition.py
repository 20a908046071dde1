"""Acquisition through the real routes: a form on a page with UTM parameters, a campaign link that keeps
them, an inbound email; new contacts by source and their conversion to a first order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from analytics import processes
from campaigns.tracking.service import Tracked, record_click
from hub import clock
from hub.ingest import IdentityRef, InboundEvent, ingest
from hub.models import IdentityKind, TimelineEvent
from hub.utm import utm_params
from tests.analytics.factories import customer, order
from tests.channels.forms.conftest import SHOP, make_form, stamp

JSON = {"Content-Type": "application/json"}
LANDING = "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1"


def test_utm_parameters_are_read_from_a_url():
    assert utm_params(LANDING) == {"source": "newsletter", "medium": "email", "campaign": "spring"}
    assert utm_params("https://shop.example/?UTM_Source=vk&utm_term=&utm_x=1") == {"source": "vk"}
    assert utm_params(None) == {} and utm_params("not a url at all") == {}


def test_new_contacts_by_source_and_utm_and_their_first_orders(hub, client, frozen_clock):
    form = make_form(hub)
    token = stamp(hub, form, frozen_clock)
    for n, email in enumerate(("anna@example.com", "boris@example.com")):
        answer = client.post(f"/channels/forms/f/{form.key}/json", headers={**JSON, "Origin": SHOP},
                             json={"name": f"Visitor {n}", "email": email, "_token": token, "_source": LANDING,
                                   "_client_id": f"abcdefgh1234567{n}"})
        assert answer.status_code == 201, answer.text
    with hub.session(read_only=True) as s:
        first = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "form.submitted")).first()
        anna = first.contact_id
    assert first.data["utm"] == {"source": "newsletter", "medium": "email", "campaign": "spring"}
    ingest(hub, InboundEvent(channel="email", kind="message", direction="in", external_id="m1",
                             identities=[IdentityRef(kind=IdentityKind.EMAIL, value="carl@example.com")]))
    customer(hub, "Imported")
    order(hub, anna, clock.now() + timedelta(days=2), "500.00", "A1")
    frozen_clock.advance(days=3)
    with hub.session(read_only=True) as s:
        data = processes.acquisition(s, since=clock.now() - timedelta(days=30), until=clock.now())
    sources = {r.key: (r.contacts, r.converted) for r in data.by_source}
    assert sources == {("forms", "Contact us"): (2, 1), ("email", "message"): (1, 0), ("none", ""): (1, 0)}
    assert {r.key: (r.contacts, r.converted) for r in data.by_utm} == {("newsletter", "email", "spring"): (2, 1)}
    assert (data.total.contacts, data.total.converted) == (4, 1)
    assert [r for r in data.by_source if r.converted][0].days_to_order == pytest.approx(2.0)


def test_a_tracked_click_keeps_the_utm_of_its_link(hub):
    cid = customer(hub, "Reader")
    with hub.session() as s, s.begin():
        assert record_click(s, Tracked(1, "email", cid, 7, 3), url=LANDING)
    with hub.session(read_only=True) as s:
        click = s.scalars(select(TimelineEvent).where(TimelineEvent.kind == "campaign.clicked")).one()
    assert click.data["utm"]["campaign"] == "spring" and click.data["url"] == LANDING
