"""Write the indicator glossary (``docs/indicators.md``, section ``registre``) from the registry."""
from __future__ import annotations

from gar_analysis.indicators import registry_markdown

try:
    from ._docs import write_section
except ImportError:  # run as a script
    from _docs import write_section

if __name__ == "__main__":
    print(write_section("indicators.md", "registre", registry_markdown()))
