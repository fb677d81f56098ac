"""Unit tests of the harness's pure parts: `python3 -m unittest discover -s vm-tests -p 'test_*.py'`
(no root, no lab, stdlib only). fixtures/ holds output captured from the real tools in the lab
(ZFS 2.1.11, util-linux 2.38.1 sfdisk); see fixtures/README.md."""
