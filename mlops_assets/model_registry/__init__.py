"""Model registry: the approved candidate as a dev version, and the promoted prod version."""
