"""The template-view mixins ported from the predecessor."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.views.generic import TemplateView

from aws_ws_async.mixins import AddWebSocketRouteToContextMixin, AppChannelWebSocketMixin
from aws_ws_async.validators import is_valid_channel_name


def context_of(view_class: type) -> dict[str, object]:
    view = view_class()
    view.setup(RequestFactory().get("/"))
    return view.get_context_data()


def test_route_and_channel_in_context() -> None:
    class Page(AddWebSocketRouteToContextMixin, TemplateView):
        channel_name = "room-1"

    context = context_of(Page)
    assert context["api_gateway_route"] == "default"
    assert context["channel_name"] == "room-1"


def test_invalid_channel_is_a_configuration_error() -> None:
    class Page(AddWebSocketRouteToContextMixin, TemplateView):
        channel_name = "room\n"

    with pytest.raises(ImproperlyConfigured):
        context_of(Page)


def test_app_channel_from_a_dotted_package() -> None:
    Page = type(
        "Page", (AppChannelWebSocketMixin, TemplateView), {"__module__": "myproject.chat.views"}
    )
    context = context_of(Page)
    assert context["channel_name"] == "myproject.chat"
    assert context["api_gateway_route"] == "myproject.chat"
    assert is_valid_channel_name(context["channel_name"])


def test_app_channel_override() -> None:
    class Page(AppChannelWebSocketMixin, TemplateView):
        app_channel_override = "lobby"

    assert context_of(Page)["channel_name"] == "lobby"
