"""Start the web UI, the OpenAI-compatible API (/v1) and the MCP tools on one port:
``python app.py [--host H] [--port P] [--auth USER:PASSWORD]``.

Settings also come from ai-digest-qa.toml and AI_DIGEST_QA_UI_* variables.
"""

import sys

from ai_digest_qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
