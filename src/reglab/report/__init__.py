from reglab.report._old import *  # noqa: F401,F403  (temporary during the move)
from reglab.report._old import main, write_report  # noqa: F401
