//! The Factur-X 1.0 container (PDF/A-3b): the CII XML embedded as `factur-x.xml`
//! (an `/EmbeddedFile` whose file specification has `/AFRelationship /Data`, listed in the
//! catalog's `/AF` and `/Names /EmbeddedFiles`), the XMP metadata declaring PDF/A-3 part 3
//! conformance B and the Factur-X extension schema, and an sRGB `GTS_PDFA1` OutputIntent.
//! The fonts are embedded already (`programs`). Everything here is a function of the invoice
//! (fixed dates: the issue date at 00:00 UTC), so the bytes stay reproducible.

use std::sync::LazyLock;

use chrono::NaiveDate;
use lopdf::{Dictionary, Object, Stream, StringFormat};

use super::PdfError;
use super::serialize::zlib;
use crate::cii;

/// sRGB, ICC v2 (Debian's `icc-profiles-free`, zlib licence: `templates/icc/`).
const SRGB_ICC: &[u8] = include_bytes!("../../../../templates/icc/sRGB.icc");
/// Compressed once.
static SRGB_ICC_Z: LazyLock<Vec<u8>> = LazyLock::new(|| zlib(SRGB_ICC));

/// What the container says about the document, beside the XML.
pub(super) struct Meta<'a> {
    pub(super) title: &'a str,
    pub(super) author: &'a str,
    pub(super) subject: &'a str,
    pub(super) producer: &'a str,
    pub(super) creator: &'a str,
    /// The file specification's `/Desc`.
    pub(super) xml_description: &'a str,
    pub(super) issued: NaiveDate,
}

fn text(s: &str) -> Object {
    Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
}

/// Turns the document printpdf built into a Factur-X PDF/A-3b carrying `xml`.
pub(super) fn make_facturx(
    lo: &mut lopdf::Document,
    xml: &[u8],
    meta: &Meta<'_>,
) -> Result<(), PdfError> {
    // PDF/A-3 is ISO 32000-1 (PDF 1.7); printpdf writes 1.3.
    lo.version = "1.7".to_string();
    let pdf_date = format!("D:{}000000+00'00'", meta.issued.format("%Y%m%d"));

    // The embedded XML: compressed, with its subtype, size and date (PDF/A-3, 6.8).
    let mut params = Dictionary::new();
    params.set("Size", Object::Integer(xml.len() as i64));
    params.set("ModDate", text(&pdf_date));
    let mut ef_dict = Dictionary::new();
    ef_dict.set("Type", Object::Name(b"EmbeddedFile".to_vec()));
    ef_dict.set("Subtype", Object::Name(b"text/xml".to_vec()));
    ef_dict.set("Params", Object::Dictionary(params));
    ef_dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
    let ef_id = lo.add_object(Stream::new(ef_dict, zlib(xml)).with_compression(false));

    let mut ef = Dictionary::new();
    ef.set("F", Object::Reference(ef_id));
    ef.set("UF", Object::Reference(ef_id));
    let mut spec = Dictionary::new();
    spec.set("Type", Object::Name(b"Filespec".to_vec()));
    spec.set("F", text(cii::FILE_NAME));
    spec.set("UF", text(cii::FILE_NAME));
    spec.set("Desc", text(meta.xml_description));
    // Factur-X 1.0 allows Data, Source or Alternative; the XML carries the invoice's data.
    spec.set("AFRelationship", Object::Name(b"Data".to_vec()));
    spec.set("EF", Object::Dictionary(ef));
    let spec_id = lo.add_object(spec);

    // The sRGB output intent (PDF/A-3, 6.2.3).
    let mut icc = Dictionary::new();
    icc.set("N", Object::Integer(3));
    icc.set("Filter", Object::Name(b"FlateDecode".to_vec()));
    let icc_id = lo.add_object(Stream::new(icc, SRGB_ICC_Z.clone()).with_compression(false));
    let mut intent = Dictionary::new();
    intent.set("Type", Object::Name(b"OutputIntent".to_vec()));
    intent.set("S", Object::Name(b"GTS_PDFA1".to_vec()));
    intent.set("OutputConditionIdentifier", text("sRGB"));
    intent.set("RegistryName", text("http://www.color.org"));
    intent.set("Info", text("sRGB IEC61966-2.1"));
    intent.set("DestOutputProfile", Object::Reference(icc_id));

    // XMP, uncompressed so that any reader finds the PDF/A identification.
    let mut xmp_dict = Dictionary::new();
    xmp_dict.set("Type", Object::Name(b"Metadata".to_vec()));
    xmp_dict.set("Subtype", Object::Name(b"XML".to_vec()));
    let xmp_id =
        lo.add_object(Stream::new(xmp_dict, xmp(meta).into_bytes()).with_compression(false));

    let mut embedded = Dictionary::new();
    embedded.set(
        "Names",
        Object::Array(vec![text(cii::FILE_NAME), Object::Reference(spec_id)]),
    );
    let mut names = Dictionary::new();
    names.set("EmbeddedFiles", Object::Dictionary(embedded));

    let catalog = lo
        .catalog_mut()
        .map_err(|e| PdfError::Serialize(format!("catalog: {e}")))?;
    catalog.set("Metadata", Object::Reference(xmp_id));
    catalog.set(
        "OutputIntents",
        Object::Array(vec![Object::Dictionary(intent)]),
    );
    catalog.set("AF", Object::Array(vec![Object::Reference(spec_id)]));
    catalog.set("Names", Object::Dictionary(names));
    Ok(())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The XMP packet: PDF/A identification, the Dublin Core and PDF properties matching the
/// document information dictionary, and the Factur-X extension schema with its values
/// (Factur-X 1.0, §6.2). `fx:DocumentType` is `INVOICE` for a credit note too: Factur-X 1.0
/// defines the values INVOICE (an invoice or a credit note: the XML's type code BT-3 tells
/// which) and ORDER, and the validator accepts nothing else for a 381 document.
fn xmp(m: &Meta<'_>) -> String {
    let date = format!("{}T00:00:00+00:00", m.issued.format("%Y-%m-%d"));
    let property = |name: &str, description: &str| {
        format!(
            "          <rdf:li rdf:parseType=\"Resource\">\n\
             \x20           <pdfaProperty:name>{name}</pdfaProperty:name>\n\
             \x20           <pdfaProperty:valueType>Text</pdfaProperty:valueType>\n\
             \x20           <pdfaProperty:category>external</pdfaProperty:category>\n\
             \x20           <pdfaProperty:description>{description}</pdfaProperty:description>\n\
             \x20         </rdf:li>\n"
        )
    };
    let properties = [
        property("DocumentFileName", "The name of the embedded XML document"),
        property(
            "DocumentType",
            "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER",
        ),
        property(
            "Version",
            "The actual version of the standard applying to the embedded XML document",
        ),
        property(
            "ConformanceLevel",
            "The conformance level of the embedded XML document",
        ),
    ]
    .concat();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
  <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
    <rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\">\n\
      <pdfaid:part>3</pdfaid:part>\n\
      <pdfaid:conformance>B</pdfaid:conformance>\n\
    </rdf:Description>\n\
    <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n\
      <dc:format>application/pdf</dc:format>\n\
      <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\n\
      <dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>\n\
      <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{subject}</rdf:li></rdf:Alt></dc:description>\n\
    </rdf:Description>\n\
    <rdf:Description rdf:about=\"\" xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n\
      <pdf:Producer>{producer}</pdf:Producer>\n\
    </rdf:Description>\n\
    <rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\">\n\
      <xmp:CreatorTool>{creator}</xmp:CreatorTool>\n\
      <xmp:CreateDate>{date}</xmp:CreateDate>\n\
      <xmp:ModifyDate>{date}</xmp:ModifyDate>\n\
      <xmp:MetadataDate>{date}</xmp:MetadataDate>\n\
    </rdf:Description>\n\
    <rdf:Description rdf:about=\"\" xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\" xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\" xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">\n\
      <pdfaExtension:schemas>\n\
        <rdf:Bag>\n\
          <rdf:li rdf:parseType=\"Resource\">\n\
            <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>\n\
            <pdfaSchema:namespaceURI>urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>\n\
            <pdfaSchema:prefix>fx</pdfaSchema:prefix>\n\
            <pdfaSchema:property>\n\
              <rdf:Seq>\n\
{properties}\
              </rdf:Seq>\n\
            </pdfaSchema:property>\n\
          </rdf:li>\n\
        </rdf:Bag>\n\
      </pdfaExtension:schemas>\n\
    </rdf:Description>\n\
    <rdf:Description rdf:about=\"\" xmlns:fx=\"urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#\">\n\
      <fx:DocumentType>INVOICE</fx:DocumentType>\n\
      <fx:DocumentFileName>{file}</fx:DocumentFileName>\n\
      <fx:Version>1.0</fx:Version>\n\
      <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>\n\
    </rdf:Description>\n\
  </rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"w\"?>",
        title = esc(m.title),
        author = esc(m.author),
        subject = esc(m.subject),
        producer = esc(m.producer),
        creator = esc(m.creator),
        file = cii::FILE_NAME,
    )
}
