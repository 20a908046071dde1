from tests.campaigns.unsubscribe.conftest import BASE, public  # noqa: F401
