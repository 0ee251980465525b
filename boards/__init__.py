"""Board support: platforms, bitstream builds with a content cache, programming.

* :mod:`.registry` — the table of supported boards (:func:`get_board`).
* :mod:`.toolchain` — the one place that picks Yosys/nextpnr/packer and openFPGALoader.
* :mod:`.build` — :func:`~spikeforge.boards.build.build`: cached bitstream plus the
  utilisation and Fmax figures from nextpnr's report.
* :mod:`.flash` — :func:`~spikeforge.boards.flash.flash`: build, then program the board.
* :mod:`.errors` — what can go wrong, each with an ``exit_code``.
"""

from .registry import BOARDS, Board, board_names, get_board

__all__ = ["BOARDS", "Board", "board_names", "get_board"]
