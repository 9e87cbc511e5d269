import sys
from tests.unit.flows.conftest import Driver, LANGUAGES

def test_probe(drive):
    d = drive("en")
    print([k for k in sys.modules if k.endswith("conftest")])
    assert isinstance(d, Driver), (type(d), Driver)
