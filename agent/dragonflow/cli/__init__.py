"""dfctl (``dfctl.py``) and its commands beyond the NB resources."""
import argparse


def command(resources, name, help, description, verb, verb_help, doc):
    """A dfctl RESOURCE VERB command that is not an NB resource's: its
    parser, described by the module docstring doc (after its first
    paragraph)."""
    res = resources.add_parser(name, help=help, description=description)
    verbs = res.add_subparsers(dest='verb', metavar='VERB')
    verbs.required = True
    return verbs.add_parser(
        verb, help=verb_help, description=doc.split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
