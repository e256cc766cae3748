"""featviz.microscope with --workers: a local Ray of 2 workers writes the same files as one process."""
import pytest
from microscope_helpers import build_toy, file_hashes, toy_site


def test_two_ray_workers_build_the_same_files(tmp_path, tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'featviz[distributed]' "
                                      "to test --workers")
    build_toy(tmp_path, workers=2)
    assert file_hashes(tmp_path) == file_hashes(toy_site(tmp_path_factory))
