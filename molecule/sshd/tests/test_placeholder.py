def test_host_answers(host):
    assert host.run("true").rc == 0
