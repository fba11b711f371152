"""The footer of keys, laid out again only when the keys it shows change.

Textual's ``Footer`` recomposes (mounts a widget per key again, then lays the screen out)
whenever the focus moves, even when the keys shown stay the same: closing the replay's jump
box cost a jump ~25 ms for a footer identical to the one on screen."""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """``Footer``, skipping a recompose that would show the same keys."""

    _shown: tuple | None = None

    def keys_shown(self, screen: Screen) -> tuple:
        """Everything of the screen's active bindings that ``Footer.compose`` reads."""
        return tuple((key, binding.key, binding.description, binding.action, binding.show, binding.group,
                      binding.tooltip, enabled, tooltip)
                     for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
                     if binding.show or key == self.app.COMMAND_PALETTE_BINDING)

    def bindings_changed(self, screen: Screen) -> None:
        if not (screen.app.app_focus and self.is_attached and screen is self.screen):
            super().bindings_changed(screen)  # no recompose: nothing is shown anew
            return
        shown = self.keys_shown(screen)
        if shown == self._shown and self._bindings_ready:
            return
        self._shown = shown
        super().bindings_changed(screen)
