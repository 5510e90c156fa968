"""The flat API: ``liprobe.__all__`` is one literal list; it must name every lazy analysis."""

import liprobe


def test_all_names_every_lazy_analysis_once_and_each_name_resolves():
    assert len(set(liprobe.__all__)) == len(liprobe.__all__)
    assert set(liprobe._LAZY) <= set(liprobe.__all__)
    for name in liprobe.__all__:
        assert callable(getattr(liprobe, name)), name
