<?php
// Turns the edge's SP metadata into SimpleSAMLphp's saml20-sp-remote
// metadata set with SimpleSAMLphp's own parser — what its admin metadata
// converter does with metadata an IdP admin pastes — and adds how the IdP
// is to serve each SP (signing, encryption, NameID).
//
// Usage: php sp-remote.php SIMPLESAMLPHP_DIR SPS.json > saml20-sp-remote.php
// SPS.json is a list of {"metadata": "<EntityDescriptor …>", "options": {…}}.
declare(strict_types=1);

require $argv[1] . '/lib/_autoload.php';

use SimpleSAML\Metadata\SAMLParser;
use SimpleSAML\Utils;

$sps = json_decode(file_get_contents($argv[2]), true, 512, JSON_THROW_ON_ERROR);
$out = "<?php\n// Written by the jitprov interop tests from sso-edge's SP metadata.\n";
foreach ($sps as $sp) {
    Utils\XML::checkSAMLMessage($sp['metadata'], 'saml-meta');
    foreach (SAMLParser::parseDescriptorsString($sp['metadata']) as $entityId => $entity) {
        $md = $entity->getMetadata20SP();
        if ($md === null) {
            fwrite(STDERR, "the metadata of {$entityId} describes no SAML 2.0 SP\n");
            exit(1);
        }
        // As the admin converter does: the raw descriptor is unused, and
        // an expiry is not for metadata converted by hand.
        unset($md['entityDescriptor'], $md['expire']);
        $md = array_merge($md, $sp['options']);
        $out .= "\n\$metadata[" . var_export($entityId, true) . '] = ' . var_export($md, true) . ";\n";
    }
}
echo $out;
