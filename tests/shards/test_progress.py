import io
import logging

from shards.progress import Progress


def test_log_file_gets_plain_lines_with_rate_and_the_last_line(caplog):
    caplog.set_level(logging.INFO, logger="shards.progress")
    p = Progress(3, "work", every_s=3600, stream=io.StringIO())
    for _ in range(3):
        p.update()
    p.close()
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert msg.startswith("work: 3/3 img (100%)") and "img/s" in msg
