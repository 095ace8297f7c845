"""Stand-in for pip's get-pip.py, which ansible-test downloads from a host these machines cannot reach.

ansible-test runs this file in each fresh sanity virtualenv with the arguments it would give
get-pip.py: Python's own ensurepip bootstraps pip, then pip installs what was asked (from PyPI).
"""

import subprocess
import sys

# get-pip.py's own switches; what is left are pip install arguments.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null for good in its own process,
# which would hide the machine's pip configuration (its CA bundle) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *arguments]))
