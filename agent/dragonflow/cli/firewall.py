"""``dfctl firewall-policy insert-rule`` and ``remove-rule``: change the
order of a policy's rules with compare-and-set (a concurrent change makes
it read the policy again), as neutron-fwaas' ``insert_rule`` and
``remove_rule`` do."""
from dragonflow import errors

ATTEMPTS = 5


def add_parsers(verbs):
    p = verbs.add_parser('insert-rule', help='insert a rule into the '
                         'policy (at the end, or before/after another)')
    p.add_argument('ref', metavar='POLICY')
    p.add_argument('rule', metavar='RULE')
    where = p.add_mutually_exclusive_group()
    where.add_argument('--before', metavar='RULE',
                       help='insert before this rule of the policy')
    where.add_argument('--after', metavar='RULE',
                       help='insert after this rule of the policy')
    p = verbs.add_parser('remove-rule', help='remove a rule from the policy')
    p.add_argument('ref', metavar='POLICY')
    p.add_argument('rule', metavar='RULE')


def insert_rule(nb, policy_id, rule_id, before=None, after=None):
    def change(rules):
        if rule_id in rules:
            raise errors.ValidationError(
                f'firewall_policy.firewall_rules: rule {rule_id} is already '
                f'in policy {policy_id}')
        anchor = before or after
        if anchor is None:
            return rules + [rule_id]
        if anchor not in rules:
            raise errors.ValidationError(
                f'firewall_policy.firewall_rules: rule {anchor} is not in '
                f'policy {policy_id}')
        at = rules.index(anchor) + (1 if after else 0)
        return rules[:at] + [rule_id] + rules[at:]
    return _change(nb, policy_id, change)


def remove_rule(nb, policy_id, rule_id):
    def change(rules):
        if rule_id not in rules:
            raise errors.ValidationError(
                f'firewall_policy.firewall_rules: rule {rule_id} is not in '
                f'policy {policy_id}')
        return [r for r in rules if r != rule_id]
    return _change(nb, policy_id, change)


def _change(nb, policy_id, change):
    for _ in range(ATTEMPTS):
        policy = nb.get('firewall_policy', policy_id)
        rules = change(list(policy.firewall_rules))
        try:
            return nb.patch('firewall_policy', policy_id,
                            {'firewall_rules': rules, 'audited': False},
                            version=policy.version)
        except errors.StaleVersion:
            continue
    raise errors.NbError(f'firewall_policy {policy_id}: gave up after '
                         f'{ATTEMPTS} attempts (concurrent writes)')
