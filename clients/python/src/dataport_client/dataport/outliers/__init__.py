"""Generated from proto/ by clients/python/generate. Do not edit."""
