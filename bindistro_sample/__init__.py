"""SAMPLE DATA generator: Yocto-shaped build directories with real packages and made-up contents."""
