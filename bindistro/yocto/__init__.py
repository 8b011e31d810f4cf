"""Readers for what a Yocto build leaves behind: conf, kas files, buildhistory."""
